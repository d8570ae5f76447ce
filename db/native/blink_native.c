/* blink_native: blink_score in C, for the calls it can answer; PL/Python answers the rest.
 *
 * blink.score_native(user_id) reads the user's latest snapshot through the index that
 * orders a user's snapshots as blink.latest_snapshot does, and scores its stored feature
 * vector with the champion's library: the file blink already built, vetted and wrote to
 * the data directory (pyfuncs/library_files.py). No executor, no SPI, no PL/pgSQL, no
 * PL/Python: public.blink_score is an inlined SQL function,
 *
 *     coalesce(blink.score_native(user_id), blink.score_user(user_id))
 *
 * and this returns NULL whenever it cannot answer exactly as blink.score_user would: no
 * snapshot, no vector for the champion's layout, the library file not on this server yet,
 * a vector of another length, a transaction that reads one snapshot throughout, an index
 * or table not in the shape below. blink.score_user (PL/pgSQL, then PL/Python) then scores
 * the call, and raises the errors that name a problem.
 *
 * The champion comes from the plan constants blink.champion_library() and
 * blink.champion_layout() (db/idempotent/010_lookups.sql), read again after any change to
 * pg_proc: a deployment redefines them, and the same invalidation replans cached plans.
 *
 * It loads nothing but "blink_libraries/<database oid>/<sha256>.so" (relative to the data
 * directory, the backend's working directory): files only the server's OS user writes, each
 * named by the sha256 of its bytes and checked against it before it was written. Each is
 * opened RTLD_LOCAL: PostgreSQL opens this module RTLD_GLOBAL, and every model library
 * exports the same names, which must not bind across models.
 *
 * It reads blink.feature_store_snapshots without the caller's SELECT privilege, as
 * blink_score (SECURITY DEFINER) always has: what it returns is the user's score.
 * Installed like any PostgreSQL module (docs/native.md). */
#include "postgres.h"

#include <dlfcn.h>
#include <string.h>

#include "access/genam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "nodes/value.h"
#include "parser/parse_func.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/uuid.h"

PG_MODULE_MAGIC;

#define SCHEMA "blink"
#define SNAPSHOTS "feature_store_snapshots"
/* (user_id, snapshot_at DESC, id DESC): a user's first visible entry is the latest
 * snapshot, the rule blink.latest_snapshot writes as ORDER BY ... LIMIT 1. */
#define LATEST_INDEX "feature_store_snapshots_user_latest"
#define LIBRARY_DIRECTORY "blink_libraries/"
#define SHA256_HEX 64

typedef double (*predict_be_fn)(const unsigned char *row);
typedef int32 (*num_feature_fn)(void);

void		_PG_init(void);

/* The champion, as the plan constants say; read again after a change to pg_proc. */
static bool champion_valid;
static bool champion_known;		/* both constants are set */
static char champion_library[MAXPGPATH];
static pg_uuid_t champion_layout;

/* The library the last call used: the champion's, almost always. */
static char loaded_name[MAXPGPATH];
static void *loaded_handle;
static predict_be_fn loaded_predict;	/* NULL: that library has no blink_predict_be */
static int32 loaded_bytes;		/* a stored vector's length for it */
static bool python_symbols;		/* PL/Python's module (and so libpython) is loaded */

static void
forget_champion(Datum arg, int cacheid, uint32 hashvalue)
{
	champion_valid = false;
}

void
_PG_init(void)
{
	CacheRegisterSyscacheCallback(PROCOID, forget_champion, (Datum) 0);
}

/* blink.<name>() called once, or NULL when it does not exist or returns NULL. */
static Datum
call_constant(const char *name, bool *isnull)
{
	Oid			fn = LookupFuncName(list_make2(makeString(pstrdup(SCHEMA)), makeString(pstrdup(name))),
									0, NULL, true);
	FmgrInfo	flinfo;
	LOCAL_FCINFO(fcinfo, 0);
	Datum		result;

	*isnull = true;
	if (!OidIsValid(fn))
		return (Datum) 0;
	fmgr_info(fn, &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 0, InvalidOid, NULL, NULL);
	result = FunctionCallInvoke(fcinfo);
	*isnull = fcinfo->isnull;
	return result;
}

static void
read_champion(void)
{
	bool		library_null,
				layout_null;
	Datum		library = call_constant("champion_library", &library_null);
	Datum		layout = call_constant("champion_layout", &layout_null);

	champion_known = false;
	if (!library_null && !layout_null)
	{
		text	   *name = DatumGetTextPP(library);
		size_t		len = VARSIZE_ANY_EXHDR(name);

		if (len < MAXPGPATH)
		{
			memcpy(champion_library, VARDATA_ANY(name), len);
			champion_library[len] = '\0';
			champion_layout = *DatumGetUUIDP(layout);
			champion_known = true;
		}
	}
	champion_valid = true;
}

/* "blink_libraries/<digits>/<64 lowercase hex>.so", and nothing else. */
static bool
is_library_name(const char *name)
{
	size_t		len = strlen(name),
				prefix = strlen(LIBRARY_DIRECTORY),
				i = prefix,
				digits = 0;

	if (len <= prefix || memcmp(name, LIBRARY_DIRECTORY, prefix) != 0)
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

/* Make the champion's library the loaded one; false when its file cannot be opened (not
 * yet written on this server, or pruned): nothing is remembered, a later call tries again. */
static bool
open_champion_library(void)
{
	void	   *handle;
	predict_be_fn predict;
	num_feature_fn num_feature;

	if (strcmp(loaded_name, champion_library) == 0)
		return true;
	if (!python_symbols)
	{
		/* Model libraries are also Python modules: their Python symbols (data among
		 * them, bound at load) come from the libpython PL/Python links. Loading
		 * PL/Python's module loads that, without starting an interpreter. */
		load_file("$libdir/plpython3", false);
		python_symbols = true;
	}
	if (!is_library_name(champion_library))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("blink.champion_library() names \"%s\", not a blink model library "
						"(blink_libraries/<database oid>/<sha256>.so)", champion_library)));
	handle = dlopen(champion_library, RTLD_NOW | RTLD_LOCAL);
	if (handle == NULL)
		return false;
	if (loaded_handle != NULL)
		dlclose(loaded_handle);	/* PL/Python may still hold its own reference */
	predict = (predict_be_fn) dlsym(handle, "blink_predict_be");
	num_feature = (num_feature_fn) dlsym(handle, "get_num_feature");
	loaded_handle = handle;
	loaded_predict = (predict != NULL && num_feature != NULL) ? predict : NULL;
	loaded_bytes = loaded_predict != NULL ? 8 * num_feature() : -1;
	strcpy(loaded_name, champion_library);
	return true;
}

static AttrNumber
attribute(TupleDesc desc, const char *name)
{
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	return InvalidAttrNumber;
}

/* The index orders a user's snapshots as blink.latest_snapshot does. */
static bool
is_latest_index(Relation index, AttrNumber user_id, AttrNumber snapshot_at, AttrNumber id)
{
	Form_pg_index form = index->rd_index;
	const int16 descending = INDOPTION_DESC | INDOPTION_NULLS_FIRST;	/* DESC's default */

	return index->rd_rel->relam == BTREE_AM_OID && form->indnkeyatts == 3
		&& form->indisvalid && form->indisready && RelationGetIndexExpressions(index) == NIL
		&& RelationGetIndexPredicate(index) == NIL
		&& form->indkey.values[0] == user_id && form->indkey.values[1] == snapshot_at
		&& form->indkey.values[2] == id && index->rd_indoption[0] == 0
		&& index->rd_indoption[1] == descending && index->rd_indoption[2] == descending;
}

/* The champion's probability for the stored vector of the user's latest snapshot, or
 * false when this snapshot is not one to score here (see the top of this file). */
static bool
score_latest(text *user_id, double *probability)
{
	Oid			schema = get_namespace_oid(SCHEMA, true);
	Oid			relid = OidIsValid(schema) ? get_relname_relid(SNAPSHOTS, schema) : InvalidOid;
	Oid			indexid = OidIsValid(schema) ? get_relname_relid(LATEST_INDEX, schema) : InvalidOid;
	Relation	heap,
				index;
	TupleDesc	desc;
	AttrNumber	layout_at,
				vector_at;
	bool		scored = false;

	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return false;
	heap = table_open(relid, AccessShareLock);
	index = index_open(indexid, AccessShareLock);
	desc = RelationGetDescr(heap);
	layout_at = attribute(desc, "feature_layout");
	vector_at = attribute(desc, "feature_vector");
	if (heap->rd_rel->relkind == RELKIND_RELATION && index->rd_index->indrelid == relid
		&& layout_at != InvalidAttrNumber
		&& vector_at != InvalidAttrNumber
		&& is_latest_index(index, attribute(desc, "user_id"), attribute(desc, "snapshot_at"),
						   attribute(desc, "id"))
		&& TupleDescAttr(desc, layout_at - 1)->atttypid == UUIDOID
		&& TupleDescAttr(desc, vector_at - 1)->atttypid == BYTEAOID)
	{
		ScanKeyData key;
		IndexScanDesc scan;
		TupleTableSlot *slot = table_slot_create(heap, NULL);

		ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
							   index->rd_indcollation[0], F_TEXTEQ, PointerGetDatum(user_id));
		scan = index_beginscan(heap, index, GetActiveSnapshot(), 1, 0);
		index_rescan(scan, &key, 1, NULL, 0);
		if (index_getnext_slot(scan, ForwardScanDirection, slot))
		{
			bool		layout_null,
						vector_null;
			Datum		layout = slot_getattr(slot, layout_at, &layout_null);
			Datum		vector = slot_getattr(slot, vector_at, &vector_null);

			if (!layout_null && !vector_null
				&& memcmp(DatumGetUUIDP(layout), &champion_layout, sizeof(pg_uuid_t)) == 0
				&& open_champion_library() && loaded_predict != NULL)
			{
				bytea	   *bytes = DatumGetByteaPP(vector);

				if (VARSIZE_ANY_EXHDR(bytes) == (Size) loaded_bytes)
				{
					*probability = loaded_predict((const unsigned char *) VARDATA_ANY(bytes));
					scored = true;
				}
			}
		}
		index_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
	}
	index_close(index, NoLock);		/* the locks are kept to the end of the transaction */
	table_close(heap, NoLock);
	return scored;
}

PG_FUNCTION_INFO_V1(blink_score_native_v2);

/* blink.score_native(user_id text) -> float8, or NULL: blink.score_user's turn. */
Datum
blink_score_native_v2(PG_FUNCTION_ARGS)
{
	double		probability;

	/* REPEATABLE READ or SERIALIZABLE: the plan constants are the latest committed
	 * champion, which such a snapshot may not see yet; PL/Python scores with the one it
	 * sees. */
	if (IsolationUsesXactSnapshot() || !ActiveSnapshotSet())
		PG_RETURN_NULL();
	if (!champion_valid)
		read_champion();
	if (!champion_known || !score_latest(PG_GETARG_TEXT_PP(0), &probability))
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(probability);
}
