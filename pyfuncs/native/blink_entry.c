/* blink's entry points, compiled into every model library beside TL2cgen's code.
 *
 * A row is plain doubles with NaN for a missing value: pyfuncs/library.py rewrites
 * TL2cgen's "missing" tests into isnan() tests, so every finite double is read as a value
 * (TL2cgen 1.0 reads a double whose low 4 bytes are 0xFFFFFFFF as missing). Rows may come
 * big endian, exactly as PostgreSQL's float8send writes them (the stored feature vectors),
 * so neither Python nor numpy touches each value.
 *
 * The library is also a Python extension module, "blink_model" (stable ABI, Python 3.9+),
 * so the server scores one row with a plain Python call: loading ctypes would cost a
 * session's first call ~8 ms, and each ctypes call ~1 us. Everything else (batches,
 * TreeSHAP) goes through ctypes, beside numpy. */
#define Py_LIMITED_API 0x03090000
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "header.h"
#include <stdint.h>
#include <string.h>

/* 2: the library is also the "blink_model" Python module (below). */
int32_t blink_abi_version(void) { return 2; }

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

/* quickscorer.c: 1 and the row's probability, or 0 when the model has no QuickScorer
 * tables. Every row is scored by QuickScorer when it can (pyfuncs/quickscorer.py): a
 * statement's one prediction finds its tables out of cache at far less cost than TL2cgen's
 * code, and hot it runs 3-5x as fast as TL2cgen's code (docs/benchmarks.md, "Session 15,
 * later"). Both give the same double: vetting checks it on every probe row. */
int blink_qs_predict(const double* x, double* out);

/* Probability of one row of native doubles (get_num_feature() of them), TL2cgen's code. */
static double tree_code_one(const double* x) {
  const int32_t n = get_num_feature();
  union Entry data[n];
  double out = 0.0;  /* predict() adds into its output */
  for (int32_t j = 0; j < n; ++j) data[j].fvalue = x[j];
  predict(data, 0, &out);
  return out;
}

/* Probability of one row of native doubles: QuickScorer when the model has its tables. */
static double predict_one(const double* x) {
  double out;
  return blink_qs_predict(x, &out) ? out : tree_code_one(x);
}

/* Probability of one row of big-endian doubles (get_num_feature() of them). */
double blink_predict_be(const unsigned char* row) {
  const int32_t n = get_num_feature();
  double x[n];
  for (int32_t j = 0; j < n; ++j) x[j] = load_be(row + 8 * (int64_t)j);
  return predict_one(x);
}

/* Probabilities of `rows` rows of native doubles, row-major, each as one score runs it:
 * blink_score_batch's and rescoring's trees. */
void blink_predict_rows(const double* x, int64_t rows, double* out) {
  const int32_t n = get_num_feature();
  for (int64_t i = 0; i < rows; ++i) out[i] = predict_one(x + i * n);
}

/* TL2cgen's code alone over `rows` rows of native doubles, row-major: the reference
 * QuickScorer is held to, bit for bit (vetting, tests), and the bench's TL2cgen figure. */
void blink_predict_rows_tl2cgen(const double* x, int64_t rows, double* out) {
  const int32_t n = get_num_feature();
  for (int64_t i = 0; i < rows; ++i) out[i] = tree_code_one(x + i * n);
}

/* --- the "blink_model" Python module ------------------------------------------------- */

/* predict_be(vector: bytes) -> float: blink_predict_be on one stored vector. */
static PyObject* py_predict_be(PyObject* module, PyObject* vector) {
  char* bytes;
  Py_ssize_t size;
  (void)module;
  if (PyBytes_AsStringAndSize(vector, &bytes, &size) < 0) return NULL;
  if (size != 8 * (Py_ssize_t)get_num_feature()) {
    return PyErr_Format(PyExc_ValueError, "a stored feature vector of %zd bytes, the library "
                        "reads %d", size, 8 * (int)get_num_feature());
  }
  return PyFloat_FromDouble(blink_predict_be((const unsigned char*)bytes));
}

/* predict_values(values: list | tuple of float) -> float: one row, NaN for missing. */
static PyObject* py_predict_values(PyObject* module, PyObject* values) {
  const int32_t n = get_num_feature();
  double x[n];
  (void)module;
  if (!PyList_Check(values) && !PyTuple_Check(values)) {
    PyErr_SetString(PyExc_TypeError, "predict_values takes a list or a tuple of floats");
    return NULL;
  }
  if (PySequence_Size(values) != n) {
    return PyErr_Format(PyExc_ValueError, "%zd feature values, the library reads %d",
                        PySequence_Size(values), (int)n);
  }
  for (int32_t j = 0; j < n; ++j) {
    PyObject* item = PySequence_GetItem(values, j);  /* new reference */
    if (item == NULL) return NULL;
    x[j] = PyFloat_AsDouble(item);
    Py_DECREF(item);
    if (x[j] == -1.0 && PyErr_Occurred()) return NULL;
  }
  return PyFloat_FromDouble(predict_one(x));
}

static int blink_model_exec(PyObject* module) {
  return PyModule_AddIntConstant(module, "num_features", get_num_feature());
}

static PyMethodDef blink_model_methods[] = {
    {"predict_be", py_predict_be, METH_O,
     "Probability of one row of big-endian float8s (NaN missing), as stored."},
    {"predict_values", py_predict_values, METH_O,
     "Probability of one row of floats (NaN missing)."},
    {NULL, NULL, 0, NULL}};

static PyModuleDef_Slot blink_model_slots[] = {{Py_mod_exec, (void*)blink_model_exec},
                                               {0, NULL}};

static struct PyModuleDef blink_model_def = {
    PyModuleDef_HEAD_INIT, "blink_model", "One model's compiled trees (pyfuncs.predictor).",
    0, blink_model_methods, blink_model_slots, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit_blink_model(void) { return PyModuleDef_Init(&blink_model_def); }
