/* blink_native: blink_score's call into the champion's compiled trees, without PL/Python.
 *
 * blink.native_score(library, vector) scores one stored feature vector with the model
 * library blink already built, vetted and wrote to the data directory
 * (pyfuncs/library_files.py). It returns NULL whenever it cannot (the file is not there yet,
 * the library is older than blink's entry points, the vector has another length, or the
 * transaction reads one snapshot throughout); blink_score then calls PL/Python, which loads
 * the model, writes the file, and raises the errors that name the problem.
 *
 * It loads nothing but "blink_libraries/<database oid>/<sha256>.so" (relative to the data
 * directory, the backend's working directory): files only the server's OS user writes, each
 * named by the sha256 of its bytes and checked against it before it was written. Each is
 * opened RTLD_LOCAL: PostgreSQL opens this module RTLD_GLOBAL, and every model library
 * exports the same names, which must not bind across models.
 *
 * Installed like any PostgreSQL module (docs/native.md); without it, blink_score works
 * the same through PL/Python, ~10 us slower per call. */
#include "postgres.h"

#include <dlfcn.h>
#include <string.h>

#include "access/xact.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

#define LIBRARY_DIRECTORY "blink_libraries/"
#define SHA256_HEX 64

typedef double (*predict_be_fn)(const unsigned char *row);
typedef int32 (*num_feature_fn)(void);

/* The library the last call used: the champion's, almost always. */
static char loaded_name[MAXPGPATH];
static size_t loaded_len;
static void *loaded_handle;
static predict_be_fn loaded_predict; /* NULL: that library has no blink_predict_be */
static int32 loaded_bytes;           /* a stored vector's length for it */

/* "blink_libraries/<digits>/<64 lowercase hex>.so", and nothing else. */
static bool
is_library_name(const char *name, size_t len)
{
	size_t		prefix = strlen(LIBRARY_DIRECTORY);
	size_t		i = prefix,
				digits = 0;

	if (len <= prefix || len >= MAXPGPATH || memcmp(name, LIBRARY_DIRECTORY, prefix) != 0)
		return false;
	for (; i < len && name[i] >= '0' && name[i] <= '9'; i++)
		digits++;
	if (digits == 0 || digits > 10 || i >= len || name[i++] != '/')
		return false;
	if (len - i != SHA256_HEX + 3 || memcmp(name + i + SHA256_HEX, ".so", 3) != 0)
		return false;
	for (size_t j = i; j < i + SHA256_HEX; j++)
		if (!((name[j] >= '0' && name[j] <= '9') || (name[j] >= 'a' && name[j] <= 'f')))
			return false;
	return true;
}

/* Make `name` the loaded library; false when its file cannot be opened (not yet written
 * on this server, or pruned): nothing is remembered, so a later call tries again. */
static bool
open_library(const char *name, size_t len)
{
	char		path[MAXPGPATH];
	void	   *handle;
	predict_be_fn predict;
	num_feature_fn num_feature;

	if (!is_library_name(name, len))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("blink.native_score loads only blink's model libraries "
						"(blink_libraries/<database oid>/<sha256>.so), not \"%.*s\"",
						(int) Min(len, 200), name)));
	memcpy(path, name, len);
	path[len] = '\0';
	handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL)
		return false;
	if (loaded_handle != NULL)
		dlclose(loaded_handle);	/* PL/Python may still hold its own reference */
	predict = (predict_be_fn) dlsym(handle, "blink_predict_be");
	num_feature = (num_feature_fn) dlsym(handle, "get_num_feature");
	loaded_handle = handle;
	loaded_predict = (predict != NULL && num_feature != NULL) ? predict : NULL;
	loaded_bytes = loaded_predict != NULL ? 8 * num_feature() : -1;
	memcpy(loaded_name, path, len + 1);
	loaded_len = len;
	return true;
}

PG_FUNCTION_INFO_V1(blink_native_score_v1);

/* blink.native_score(library text, vector bytea) -> float8, or NULL (see above). */
Datum
blink_native_score_v1(PG_FUNCTION_ARGS)
{
	text	   *library = PG_GETARG_TEXT_PP(0);
	bytea	   *vector = PG_GETARG_BYTEA_PP(1);
	const char *name = VARDATA_ANY(library);
	size_t		len = VARSIZE_ANY_EXHDR(library);

	/* REPEATABLE READ or SERIALIZABLE: the champion constant is the latest committed one,
	 * which such a snapshot may not see yet; PL/Python scores with the one it sees. */
	if (IsolationUsesXactSnapshot())
		PG_RETURN_NULL();
	if ((loaded_len != len || memcmp(loaded_name, name, len) != 0)
		&& !open_library(name, len))
		PG_RETURN_NULL();
	if (loaded_predict == NULL || VARSIZE_ANY_EXHDR(vector) != (size_t) loaded_bytes)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(loaded_predict((const unsigned char *) VARDATA_ANY(vector)));
}
