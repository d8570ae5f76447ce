/* blink's entry points, compiled into every model library beside TL2cgen's code.
 *
 * A row is plain doubles with NaN for a missing value: pyfuncs/library.py rewrites
 * TL2cgen's "missing" tests into isnan() tests, so every finite double is read as a value
 * (TL2cgen 1.0 reads a double whose low 4 bytes are 0xFFFFFFFF as missing). Rows may come
 * big endian, exactly as PostgreSQL's float8send writes them (the stored feature vectors),
 * so neither Python nor numpy touches each value. */
#include "header.h"
#include <stdint.h>
#include <string.h>

int32_t blink_abi_version(void) { return 1; }

static double load_be(const unsigned char* p) {
  uint64_t u;
  double d;
  memcpy(&u, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
  u = __builtin_bswap64(u);
#endif
  memcpy(&d, &u, 8);
  return d;
}

/* Probability of one row of big-endian doubles (get_num_feature() of them). */
double blink_predict_be(const unsigned char* row) {
  const int32_t n = get_num_feature();
  union Entry data[n];
  double out = 0.0;  /* predict() adds into its output */
  for (int32_t j = 0; j < n; ++j) data[j].fvalue = load_be(row + 8 * (int64_t)j);
  predict(data, 0, &out);
  return out;
}

/* Probabilities of `rows` rows of native doubles, row-major. */
void blink_predict_rows(const double* x, int64_t rows, double* out) {
  const int32_t n = get_num_feature();
  union Entry data[n];
  for (int64_t i = 0; i < rows; ++i) {
    memcpy(data, x + i * n, sizeof(double) * (size_t)n);
    out[i] = 0.0;
    predict(data, 0, out + i);
  }
}
