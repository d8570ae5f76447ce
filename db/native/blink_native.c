/* blink_native: blink_score and blink_score_batch in C, for what they can answer;
 * PL/Python answers the rest.
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
 * The champion comes from the plan constants blink.champion_model_id(), _library(),
 * _layout() and _policy() (db/idempotent/010_lookups.sql), read again after any change to
 * pg_proc: a deployment redefines them, and the same invalidation replans cached plans.
 *
 * public.blink_score_batch(user_ids) does the same for many users in one call, the trees
 * run over many vectors at a time, with the decision and risk band of the champion's policy
 * (blink.champion_policy(), pyfuncs/decision.py's rule); PL/Python (blink.score_batch_arrays)
 * scores the elements it leaves, or the whole batch when it cannot take it.
 *
 * It loads nothing but "blink_libraries/<database oid>/<sha256>.so" (relative to the data
 * directory, the backend's working directory): files only the server's OS user writes, each
 * named by the sha256 of its bytes and checked against it before it was written. Each is
 * opened RTLD_LOCAL: PostgreSQL opens this module RTLD_GLOBAL, and every model library
 * exports the same names, which must not bind across models.
 *
 * It reads blink.feature_store_snapshots without the caller's SELECT privilege, as
 * blink_score (SECURITY DEFINER) always has: what it returns is the users' scores; and it
 * calls blink.score_batch_arrays as blink_score_batch always has.
 * Installed like any PostgreSQL module (docs/native.md). */
#include "postgres.h"

#include <dlfcn.h>
#include <string.h>

#include "access/genam.h"
#include "access/heapam.h"
#include "access/nbtree.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "catalog/pg_opfamily.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/value.h"
#include "optimizer/cost.h"
#include "parser/parse_func.h"
#include "port/pg_bswap.h"
#include "storage/bufmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/fmgrprotos.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/pg_locale.h"
#include "utils/timestamp.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"
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
typedef void (*predict_rows_fn)(const double *rows, int64 count, double *out);
typedef int32 (*num_feature_fn)(void);

void		_PG_init(void);

/* The champion, as the plan constants say; read again after a change to pg_proc. */
static bool champion_valid;
static uint64 champion_changes;	/* pg_proc invalidations seen: a read spans none */
static bool champion_known;		/* model, layout and library are set */
static int64 champion_model_id;
static char champion_library[MAXPGPATH];
static pg_uuid_t champion_layout;

/* Its decision policy (pyfuncs.decision.DecisionPolicy): decline at or above the
 * threshold; the first band whose bound is >= p, the last beyond every bound. */
static bool policy_known;
static double policy_threshold;
static int	policy_bands;
static double *policy_bounds;	/* in TopMemoryContext */
static char **policy_names;

/* The library the last call used: the champion's, almost always. */
static char loaded_name[MAXPGPATH];
static void *loaded_handle;
static predict_be_fn loaded_predict;	/* NULL: that library lacks blink's entry points */
static predict_rows_fn loaded_predict_rows;
static int32 loaded_bytes;		/* a stored vector's length for it */
static bool python_symbols;		/* PL/Python's module (and so libpython) is loaded */

static void
forget_champion(Datum arg, int cacheid, uint32 hashvalue)
{
	champion_valid = false;
	champion_changes++;
}

/* The table and index snapshots_open found and checked, kept until a relcache invalidation
 * of either (ALTER, DROP, REINDEX, RENAME, a new or dropped index): finding them by name and
 * checking their shape again cost ~1 µs of every call (docs/benchmarks.md). */
typedef struct SnapshotsShape
{
	Oid			relid;
	Oid			indexid;
	AttrNumber	id_at;
	AttrNumber	snapshot_at_at;
	AttrNumber	layout_at;
	AttrNumber	vector_at;
} SnapshotsShape;

static bool shape_known;
static SnapshotsShape known_shape;

static void
forget_shape(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == known_shape.relid || relid == known_shape.indexid)
		shape_known = false;
}

void
_PG_init(void)
{
	CacheRegisterSyscacheCallback(PROCOID, forget_champion, (Datum) 0);
	CacheRegisterRelcacheCallback(forget_shape, (Datum) 0);
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

/* The policy from blink.champion_policy() (threshold, band_bounds, band_names); false when
 * it is absent or not a policy blink's vetting would accept. */
static bool
read_policy(void)
{
	bool		isnull,
				bounds_null,
				names_null,
				threshold_null;
	Datum		policy = call_constant("champion_policy", &isnull);
	HeapTupleHeader row;
	Datum		threshold,
				bounds_datum,
				names_datum,
			   *bounds,
			   *names;
	bool	   *bound_nulls,
			   *name_nulls;
	int			nbounds,
				nnames;
	ArrayType  *bound_array,
			   *name_array;

	if (isnull)
		return false;
	row = DatumGetHeapTupleHeader(policy);
	threshold = GetAttributeByNum(row, 1, &threshold_null);
	bounds_datum = GetAttributeByNum(row, 2, &bounds_null);
	names_datum = GetAttributeByNum(row, 3, &names_null);
	if (threshold_null || bounds_null || names_null)
		return false;
	bound_array = DatumGetArrayTypeP(bounds_datum);
	name_array = DatumGetArrayTypeP(names_datum);
	if (ARR_NDIM(bound_array) != 1 || ARR_NDIM(name_array) != 1
		|| ARR_ELEMTYPE(bound_array) != FLOAT8OID || ARR_ELEMTYPE(name_array) != TEXTOID)
		return false;
	deconstruct_array_builtin(bound_array, FLOAT8OID, &bounds, &bound_nulls, &nbounds);
	deconstruct_array_builtin(name_array, TEXTOID, &names, &name_nulls, &nnames);
	if (nbounds < 1 || nbounds != nnames)
		return false;
	for (int i = 0; i < nbounds; i++)
		if (bound_nulls[i] || name_nulls[i])
			return false;
	if (policy_names != NULL)
	{
		for (int i = 0; i < policy_bands; i++)
			pfree(policy_names[i]);
		pfree(policy_names);
		pfree(policy_bounds);
	}
	policy_bounds = MemoryContextAlloc(TopMemoryContext, sizeof(double) * nbounds);
	policy_names = MemoryContextAlloc(TopMemoryContext, sizeof(char *) * nbounds);
	for (int i = 0; i < nbounds; i++)
	{
		policy_bounds[i] = DatumGetFloat8(bounds[i]);
		policy_names[i] = MemoryContextStrdup(TopMemoryContext, TextDatumGetCString(names[i]));
	}
	policy_bands = nbounds;
	policy_threshold = DatumGetFloat8(threshold);
	return true;
}

static void
read_champion(void)
{
	uint64		changes;

	do							/* again when a deployment lands while we read */
	{
		bool		model_null,
					library_null,
					layout_null;
		Datum		model,
					library,
					layout;

		changes = champion_changes;
		model = call_constant("champion_model_id", &model_null);
		library = call_constant("champion_library", &library_null);
		layout = call_constant("champion_layout", &layout_null);
		champion_known = false;
		policy_known = false;
		if (!model_null && !library_null && !layout_null)
		{
			text	   *name = DatumGetTextPP(library);
			size_t		len = VARSIZE_ANY_EXHDR(name);

			if (len < MAXPGPATH)
			{
				memcpy(champion_library, VARDATA_ANY(name), len);
				champion_library[len] = '\0';
				champion_layout = *DatumGetUUIDP(layout);
				champion_model_id = DatumGetInt64(model);
				champion_known = true;
				policy_known = read_policy();
			}
		}
	} while (changes != champion_changes);
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
	predict_rows_fn predict_rows;
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
	predict_rows = (predict_rows_fn) dlsym(handle, "blink_predict_rows");
	num_feature = (num_feature_fn) dlsym(handle, "get_num_feature");
	loaded_handle = handle;
	loaded_predict = (predict != NULL && predict_rows != NULL && num_feature != NULL) ? predict : NULL;
	loaded_predict_rows = predict_rows;
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

/* blink.feature_store_snapshots and its latest-first index, open for lookups. */
typedef struct Snapshots
{
	Relation	heap;
	Relation	index;
	SnapshotsShape shape;		/* their OIDs and the columns read */
	IndexScanDesc scan;
	TupleTableSlot *slot;
} Snapshots;

/* Start the lookups on the opened table and index. */
static bool
snapshots_begin(Snapshots *s)
{
	s->slot = table_slot_create(s->heap, NULL);
	s->scan = index_beginscan(s->heap, s->index, GetActiveSnapshot(), 1, 0);
	return true;
}

/* snapshots_open by the table and index found before: false (nothing left open) when an
 * invalidation reached them, which taking the lock may deliver. */
static bool
snapshots_reopen(Snapshots *s)
{
	s->heap = try_table_open(known_shape.relid, AccessShareLock);
	if (s->heap == NULL)
		return false;
	if (shape_known)
	{
		/* Dropping or changing the index invalidates the table's entry too */
		s->index = index_open(known_shape.indexid, AccessShareLock);
		if (shape_known)
		{
			s->shape = known_shape;
			return snapshots_begin(s);
		}
		index_close(s->index, NoLock);
	}
	table_close(s->heap, NoLock);
	return false;
}

/* Open the table and its index; false (nothing left open) when either is missing or not
 * in the shape this file reads. */
static bool
snapshots_open(Snapshots *s)
{
	Oid			schema;
	Oid			relid;
	Oid			indexid;
	TupleDesc	desc;

	if (shape_known && snapshots_reopen(s))
		return true;
	shape_known = false;
	schema = get_namespace_oid(SCHEMA, true);
	relid = OidIsValid(schema) ? get_relname_relid(SNAPSHOTS, schema) : InvalidOid;
	indexid = OidIsValid(schema) ? get_relname_relid(LATEST_INDEX, schema) : InvalidOid;
	if (!OidIsValid(relid) || !OidIsValid(indexid))
		return false;
	s->heap = table_open(relid, AccessShareLock);
	s->index = index_open(indexid, AccessShareLock);
	desc = RelationGetDescr(s->heap);
	s->shape.id_at = attribute(desc, "id");
	s->shape.snapshot_at_at = attribute(desc, "snapshot_at");
	s->shape.layout_at = attribute(desc, "feature_layout");
	s->shape.vector_at = attribute(desc, "feature_vector");
	if (s->heap->rd_rel->relkind == RELKIND_RELATION && s->index->rd_index->indrelid == relid
		&& s->shape.id_at != InvalidAttrNumber && s->shape.snapshot_at_at != InvalidAttrNumber
		&& s->shape.layout_at != InvalidAttrNumber && s->shape.vector_at != InvalidAttrNumber
		&& is_latest_index(s->index, attribute(desc, "user_id"), s->shape.snapshot_at_at,
						   s->shape.id_at)
		&& TupleDescAttr(desc, s->shape.id_at - 1)->atttypid == INT8OID
		&& TupleDescAttr(desc, s->shape.snapshot_at_at - 1)->atttypid == TIMESTAMPTZOID
		&& TupleDescAttr(desc, s->shape.layout_at - 1)->atttypid == UUIDOID
		&& TupleDescAttr(desc, s->shape.vector_at - 1)->atttypid == BYTEAOID)
	{
		s->shape.relid = relid;
		s->shape.indexid = indexid;
		known_shape = s->shape;
		shape_known = true;
		return snapshots_begin(s);
	}
	index_close(s->index, NoLock);	/* the locks are kept to the end of the transaction */
	table_close(s->heap, NoLock);
	return false;
}

static void
snapshots_close(Snapshots *s)
{
	index_endscan(s->scan);
	ExecDropSingleTupleTableSlot(s->slot);
	index_close(s->index, NoLock);
	table_close(s->heap, NoLock);
}

/* Put the user's latest snapshot in s->slot; false when the user has none. */
static bool
snapshots_latest(Snapshots *s, Datum user_id)
{
	ScanKeyData key;

	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   s->index->rd_indcollation[0], F_TEXTEQ, user_id);
	index_rescan(s->scan, &key, 1, NULL, 0);
	return index_getnext_slot(s->scan, ForwardScanDirection, s->slot);
}

/* A row's stored vector when the loaded library reads it (of the champion's layout and the
 * library's length), else NULL. A copy when it was stored compressed. */
static bytea *
loaded_vector(Datum layout, bool layout_null, Datum vector, bool vector_null)
{
	bytea	   *bytes;

	if (layout_null || vector_null
		|| memcmp(DatumGetUUIDP(layout), &champion_layout, sizeof(pg_uuid_t)) != 0)
		return NULL;
	bytes = DatumGetByteaPP(vector);
	return VARSIZE_ANY_EXHDR(bytes) == (Size) loaded_bytes ? bytes : NULL;
}

/* The stored vector in s->slot when the champion's library reads it, else NULL. */
static bytea *
champion_vector(Snapshots *s)
{
	bool		layout_null,
				vector_null;
	Datum		layout = slot_getattr(s->slot, s->shape.layout_at, &layout_null);
	Datum		vector = slot_getattr(s->slot, s->shape.vector_at, &vector_null);

	if (!open_champion_library() || loaded_predict == NULL)
		return NULL;
	return loaded_vector(layout, layout_null, vector, vector_null);
}

/* The champion's probability for the stored vector in s->slot; false when that vector is
 * not one to score here (none for the champion's layout, another length, no library). */
static bool
score_slot(Snapshots *s, double *probability)
{
	bytea	   *bytes = champion_vector(s);

	if (bytes == NULL)
		return false;
	*probability = loaded_predict((const unsigned char *) VARDATA_ANY(bytes));
	return true;
}

/* Neither entry point answers in a REPEATABLE READ or SERIALIZABLE transaction: the plan
 * constants are the latest committed champion, which such a snapshot may not see yet;
 * PL/Python scores with the one it sees. */
static bool
champion_here(void)
{
	if (IsolationUsesXactSnapshot() || !ActiveSnapshotSet())
		return false;
	if (!champion_valid)
		read_champion();
	return champion_known;
}

PG_FUNCTION_INFO_V1(blink_score_native_v2);

/* blink.score_native(user_id text) -> float8, or NULL: blink.score_user's turn. */
Datum
blink_score_native_v2(PG_FUNCTION_ARGS)
{
	Snapshots	s;
	double		probability;
	bool		scored;

	if (!champion_here() || !snapshots_open(&s))
		PG_RETURN_NULL();
	scored = snapshots_latest(&s, PG_GETARG_DATUM(0)) && score_slot(&s, &probability);
	snapshots_close(&s);
	if (!scored)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(probability);
}

/* A batch's answers, aligned with its elements. */
typedef struct Batch
{
	int			n;
	Datum	   *users;
	bool	   *user_nulls;
	int64		model_id;
	bool	   *scored;			/* probability, decision and band are set */
	Datum	   *probabilities;
	Datum	   *decisions;
	Datum	   *bands;
	bool	   *found;			/* snapshot id and time are set: the user has a snapshot */
	Datum	   *snapshot_ids;
	Datum	   *snapshot_ats;
} Batch;

/* Vectors are looked up first and the trees then run over many of them in one call: the
 * tree code stays in the CPU's caches, as in the raw kernel (trees interleaved with lookups
 * ran ~15% slower, docs/benchmarks.md). At most this many bytes of rows wait, whatever the
 * number of features. */
#define PENDING_BYTES (16 * 1024 * 1024)

/* Rows waiting for the trees: native doubles, and the batch positions they answer. */
typedef struct Pending
{
	int			rows;
	int			capacity;
	double	   *matrix;
	int		   *at;
	double	   *out;
} Pending;

/* Append a stored vector (big-endian doubles, as float8send writes them) as a native row. */
static void
pending_add(Pending *q, const bytea *vector, int at)
{
	const char *bytes = VARDATA_ANY(vector);
	int			features = loaded_bytes / 8;
	double	   *row = q->matrix + (Size) q->rows * features;

	for (int j = 0; j < features; j++)
	{
		uint64		bits;

		memcpy(&bits, bytes + 8 * j, 8);
		bits = pg_ntoh64(bits);
		memcpy(row + j, &bits, 8);
	}
	q->at[q->rows++] = at;
}

/* The policy's words, as text datums made once per batch. */
typedef struct Verdicts
{
	Datum		approved;
	Datum		declined;
	Datum	   *bands;
} Verdicts;

/* Element i's answer: probability p with the policy's decision and band. */
static void
decide(Batch *b, int i, double p, const Verdicts *v)
{
	int			band = 0;

	/* pyfuncs.decision.DecisionPolicy.decide: the same comparisons */
	while (band < policy_bands - 1 && !(p <= policy_bounds[band]))
		band++;
	b->scored[i] = true;
	b->probabilities[i] = Float8GetDatum(p);
	b->decisions[i] = p >= policy_threshold ? v->declined : v->approved;
	b->bands[i] = v->bands[band];
}

/* Run the trees over the waiting rows; each answer with the policy's decision and band. */
static void
pending_score(Pending *q, Batch *b, const Verdicts *v)
{
	loaded_predict_rows(q->matrix, q->rows, q->out);
	for (int r = 0; r < q->rows; r++)
		decide(b, q->at[r], q->out[r], v);
	q->rows = 0;
}

/* Queue the vector in s->slot for element i, or leave i to PL/Python; a vector stored
 * compressed is decompressed in a context reset after each row. */
static void
pending_add_slot(Pending *q, Snapshots *s, int i, int *left, int *nleft, MemoryContext row)
{
	MemoryContext caller = MemoryContextSwitchTo(row);
	bytea	   *vector = champion_vector(s);

	if (vector != NULL)
		pending_add(q, vector, i);
	else
		left[(*nleft)++] = i;
	MemoryContextSwitchTo(caller);
	MemoryContextReset(row);
}

/* A batch with many ids for the table's size walks forward through the index, its ids
 * taken in the index's order: each user's entries follow the last one's, so stepping to
 * them costs a comparison or two, where a lookup from the root descends the tree with
 * about 20 comparisons (docs/benchmarks.md, "The batch walks the index"). A sparse batch
 * would step over the entries of all the users between its ids: it looks each id up from
 * the root, in input order (snapshots_latest). */
typedef struct Walk
{
	SortSupportData order;		/* the index's order of user ids */
	const Datum *users;			/* the batch's ids */
	bool		started;		/* a scan from some id on has begun */
	bool		exhausted;		/* and has no entry left */
	bool		fetched;		/* s->slot holds cur's table row, visible to the snapshot */
	Datum		cur;			/* the user id of the scan's current index entry */
	MemoryContext cur_context;	/* holds cur when the index stored it compressed */
} Walk;

/* A batch walks when it has at least one non-NULL id per WALK_DENSITY snapshots in the
 * table (table_rows: as the planner estimates it now): a step costs about a quarter of a
 * lookup from the root. */
#define WALK_DENSITY 4
/* An id not reached within this many entries is looked up from the root. */
#define WALK_STEPS 8

static int
walk_compare(Walk *w, Datum a, Datum b)
{
	return ApplySortComparator(a, false, b, false, &w->order);
}

static int
compare_positions(const void *a, const void *b, void *arg)
{
	Walk	   *w = (Walk *) arg;

	return walk_compare(w, w->users[*(const int *) a], w->users[*(const int *) b]);
}

/* A batch id where ids compare as bytes (COLLATE "C", db/incremental/0012_user_ids_bytes.sql):
 * key holds the 8 bytes after the prefix all the batch's ids share, big-endian and padded
 * with zeros, so sorting compares integers where it would call memcmp through the
 * collation's comparator; ids of equal keys compare in full. */
typedef struct IdKey
{
	uint64		key;
	const char *bytes;
	int			len;
	int			position;
} IdKey;

static int
compare_id_keys(const void *a, const void *b)
{
	const IdKey *x = (const IdKey *) a;
	const IdKey *y = (const IdKey *) b;
	int			order;

	if (x->key != y->key)
		return x->key < y->key ? -1 : 1;
	order = memcmp(x->bytes, y->bytes, Min(x->len, y->len));
	return order != 0 ? order : (x->len > y->len) - (x->len < y->len);
}

/* Sort the n positions in order[] by their ids' bytes, as a "C" index orders them. */
static void
sort_by_bytes(const Datum *users, int *order, int n)
{
	IdKey	   *keys = palloc(sizeof(IdKey) * Max(n, 1));
	int			prefix = INT_MAX;

	for (int k = 0; k < n; k++)
	{
		/* an array's elements are never toasted, at most a short header */
		text	   *id = (text *) DatumGetPointer(users[order[k]]);

		keys[k].bytes = VARDATA_ANY(id);
		keys[k].len = VARSIZE_ANY_EXHDR(id);
		keys[k].position = order[k];
		if (k == 0)
			prefix = keys[0].len;
		else
		{
			int			same = 0;

			while (same < prefix && same < keys[k].len
				   && keys[k].bytes[same] == keys[0].bytes[same])
				same++;
			prefix = same;
		}
	}
	for (int k = 0; k < n; k++)
	{
		uint64		key = 0;

		for (int j = prefix; j < prefix + 8; j++)
			key = (key << 8) | (j < keys[k].len ? (unsigned char) keys[k].bytes[j] : 0);
		keys[k].key = key;
	}
	qsort(keys, n, sizeof(IdKey), compare_id_keys);
	for (int k = 0; k < n; k++)
		order[k] = keys[k].position;
	pfree(keys);
}

/* The table's rows now: reltuples scaled to its current size, as the planner estimates;
 * negative when unknown (never analyzed or vacuumed, or empty then and not now). */
static double
table_rows(Relation heap)
{
	double		rows = heap->rd_rel->reltuples;
	BlockNumber pages = heap->rd_rel->relpages;
	BlockNumber now = RelationGetNumberOfBlocks(heap);

	if (rows < 0 || pages == 0)
		return rows >= 0 && now == 0 ? 0 : -1;
	return rows / pages * now;
}

/* The batch's ids that can have a snapshot (the non-NULL ones): what both ways through a
 * dense batch (walk_order, scans_table) weigh against the table's rows. */
static int
batch_ids(const Batch *b)
{
	int			ids = 0;

	for (int i = 0; i < b->n; i++)
		ids += !b->user_nulls[i];
	return ids;
}

/* The positions of the batch's non-NULL ids in the index's order of the ids, their count
 * in *count; NULL when the batch does not walk (sparse, the table never analyzed, or an
 * index that does not order ids as text does). */
static int *
walk_order(Snapshots *s, const Batch *b, Walk *w, int *count)
{
	double		snapshots = table_rows(s->heap);	/* negative: unknown */
	int		   *order;
	int			n = 0;
	bool		sorted = true;

	if (s->index->rd_opfamily[0] != TEXT_BTREE_FAM_OID || snapshots < 0
		|| (double) batch_ids(b) * WALK_DENSITY < snapshots)
		return NULL;
	memset(&w->order, 0, sizeof(w->order));
	w->order.ssup_cxt = CurrentMemoryContext;
	w->order.ssup_collation = s->index->rd_indcollation[0];
	w->order.ssup_attno = 1;
	PrepareSortSupportFromIndexRel(s->index, BTLessStrategyNumber, &w->order);
	w->users = b->users;
	order = palloc(sizeof(int) * Max(b->n, 1));
	for (int i = 0; i < b->n; i++)
	{
		if (b->user_nulls[i])
			continue;
		if (n > 0 && sorted && walk_compare(w, b->users[order[n - 1]], b->users[i]) > 0)
			sorted = false;
		order[n++] = i;
	}
	if (!sorted && lc_collate_is_c(w->order.ssup_collation))
		sort_by_bytes(b->users, order, n);
	else if (!sorted)
		qsort_arg(order, n, sizeof(int), compare_positions, w);
	*count = n;
	w->started = false;
	w->cur_context = AllocSetContextCreate(CurrentMemoryContext, "blink batch walk",
										   ALLOCSET_SMALL_SIZES);
	s->scan->xs_want_itup = true;	/* the ids are read from the index's entries */
	return order;
}

/* Move to the scan's next index entry, its table row not read yet. */
static void
walk_next(Walk *w, Snapshots *s)
{
	ItemPointer tid = index_getnext_tid(s->scan, ForwardScanDirection);
	bool		isnull = true;
	Datum		user_id = (Datum) 0;

	w->fetched = false;
	if (tid != NULL)
		user_id = index_getattr(s->scan->xs_itup, 1, RelationGetDescr(s->index), &isnull);
	w->exhausted = isnull;		/* a scan from an id on never returns NULL ids */
	if (isnull)
		return;
	/* The entry stays where it is until the next step; only a compressed one is copied. */
	w->cur = user_id;
	if (VARATT_IS_EXTENDED(DatumGetPointer(user_id))
		&& !VARATT_IS_SHORT(DatumGetPointer(user_id)))
	{
		MemoryContext caller = MemoryContextSwitchTo(w->cur_context);

		MemoryContextReset(w->cur_context);
		w->cur = PointerGetDatum(PG_DETOAST_DATUM_PACKED(user_id));
		MemoryContextSwitchTo(caller);
	}
}

/* Start the scan at the first entry from user_id on. */
static void
walk_start(Walk *w, Snapshots *s, Datum user_id)
{
	ScanKeyData key;

	ScanKeyEntryInitialize(&key, 0, 1, BTGreaterEqualStrategyNumber, InvalidOid,
						   s->index->rd_indcollation[0], F_TEXT_GE, user_id);
	index_rescan(s->scan, &key, 1, NULL, 0);
	w->started = true;
	walk_next(w, s);
}

/* snapshots_latest for the next id of a batch in the index's order: put the user's latest
 * snapshot in s->slot, false when the user has none. The scan's current entry is always
 * the first of its user's entries not yet found invisible, and every entry before it from
 * the previous id on has been passed, so the first visible entry of user_id is the latest
 * snapshot, as a lookup from the root finds it. */
static bool
walk_latest(Walk *w, Snapshots *s, Datum user_id)
{
	int			steps = 0;

	if (!w->started)
		walk_start(w, s, user_id);
	for (;;)
	{
		int			order;

		if (w->exhausted)
			return false;
		order = walk_compare(w, w->cur, user_id);
		if (order > 0)			/* past it: the user has no snapshot */
			return false;
		if (order == 0)
		{
			if (w->fetched || index_fetch_heap(s->scan, s->slot))
			{
				w->fetched = true;	/* a repeated id finds it again */
				return true;
			}
			walk_next(w, s);	/* not visible to this snapshot: the user's next entry */
		}
		else if (++steps > WALK_STEPS)
		{
			walk_start(w, s, user_id);
			steps = 0;			/* every entry is now from user_id on: no more steps */
		}
		else
			walk_next(w, s);
	}
}

/* A batch with ids for most of the table's rows reads the table once in its physical
 * order, as PostgreSQL's planner would choose a sequential scan for a join that reads most
 * of a table: a row costs a hash probe of its user id, where the walk costs an index step
 * and a table fetch per id, plus sorting the ids (docs/benchmarks.md, "The batch reads the
 * table in order"). Every visible snapshot of a batch's user is compared with the latest
 * found so far by (snapshot_at, id), the order of the index a lookup reads, so the user's
 * latest snapshot is the one a lookup from the root finds. A vector is queued for the trees
 * when its snapshot is the user's latest so far; an answer counts only if no later
 * snapshot of the user superseded its snapshot before the end of the scan.
 * PostgreSQL's enable_seqscan = off turns it off (the batch then walks the index). */
/* At least one id per SCAN_DENSITY snapshots in the table (as the planner estimates it):
 * measured, a table row costs ~0.25 us, a walk's id ~1 us and a lookup's ~4 us more than a
 * scan's id, so the scan still won at one id per 12 rows; 8 leaves a margin. */
#define SCAN_DENSITY 8

/* A batch id (a varlena, any header): a key of the batch's hash table. 16 bytes an entry,
 * half what the id's address and length as the key took, so 100,000 ids' table is 2 MB
 * (0.02-0.03 us a row less, docs/benchmarks.md). The hash stays stored: a probe meeting
 * another id compares integers (without it the read was 0.06 us a row slower). */
#define SCAN_MAX_IDS (1 << 24)	/* users numbered in 24 bits */

typedef struct IdEntry
{
	const struct varlena *key;
	uint32		hash;
	unsigned	user:24;		/* the distinct user's number: its Latest */
	unsigned	status:8;
} IdEntry;

static inline bool
same_id(const struct varlena *a, const struct varlena *b)
{
	Size		len = VARSIZE_ANY_EXHDR(a);

	return len == VARSIZE_ANY_EXHDR(b) && memcmp(VARDATA_ANY(a), VARDATA_ANY(b), len) == 0;
}

#define SH_PREFIX idmap
#define SH_ELEMENT_TYPE IdEntry
#define SH_KEY_TYPE const struct varlena *
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) VARDATA_ANY(k), VARSIZE_ANY_EXHDR(k))
#define SH_EQUAL(tb, a, b) same_id(a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) ((a)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* A distinct user's latest snapshot found so far, and the trees' answer for it. */
typedef struct Latest
{
	bool		found;
	bool		scored;			/* p answers this snapshot's vector */
	TimestampTz snapshot_at;
	int64		snapshot_id;
	int64		seen;			/* the scan's row number of this snapshot */
	double		p;
} Latest;

static bool
scans_table(Snapshots *s, const Batch *b)
{
	double		rows = table_rows(s->heap);
	int			ids = batch_ids(b);

	return enable_seqscan && s->heap->rd_tableam == GetHeapamTableAmRoutine()
		&& ids < SCAN_MAX_IDS && rows >= 0 && rows <= (double) ids * SCAN_DENSITY;
}

/* Run the trees over the waiting rows (q->at: users; seen: the row each vector came from),
 * keeping the answers whose snapshot is still the user's latest. */
static void
scan_score(Pending *q, const int64 *seen, Latest *latest)
{
	loaded_predict_rows(q->matrix, q->rows, q->out);
	for (int r = 0; r < q->rows; r++)
	{
		Latest	   *l = &latest[q->at[r]];

		if (l->seen == seen[r])
		{
			l->p = q->out[r];
			l->scored = true;
		}
	}
	q->rows = 0;
}

/* The batch by one pass over the table (see SCAN_DENSITY); returns how many elements it
 * left to PL/Python, their positions in *left. */
static int
scan_batch(Snapshots *s, Batch *b, int *left, Pending *q, MemoryContext row, const Verdicts *v)
{
	idmap_hash *map = idmap_create(CurrentMemoryContext, b->n, NULL);
	int		   *user_of = palloc(sizeof(int) * Max(b->n, 1));
	int			users = 0,
				nleft = 0;
	Latest	   *latest;
	int64	   *seen = palloc(sizeof(int64) * q->capacity);
	int64		rows = 0;
	AttrNumber	user_id_at = s->index->rd_index->indkey.values[0];
	TupleDesc	desc = RelationGetDescr(s->heap);
	Datum	   *values = palloc(sizeof(Datum) * desc->natts);
	bool	   *nulls = palloc(sizeof(bool) * desc->natts);
	TableScanDesc scan;
	HeapTuple	tuple;

	for (int i = 0; i < b->n; i++)
	{
		/* an array's elements are never toasted, at most a short header */
		IdEntry    *entry;
		bool		known;

		if (b->user_nulls[i])
			continue;
		entry = idmap_insert(map, (const struct varlena *) DatumGetPointer(b->users[i]), &known);
		if (!known)
			entry->user = users++;
		user_of[i] = entry->user;
	}
	latest = palloc0(sizeof(Latest) * Max(users, 1));

	/* heap_getnext, not a slot: a slot pins and releases each row's page (scans_table
	 * checks the table is heap) */
	scan = table_beginscan(s->heap, GetActiveSnapshot(), 0, NULL);
	while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		user_id = heap_getattr(tuple, user_id_at, desc, &isnull);
		MemoryContext caller;
		IdEntry    *entry;
		Latest	   *l;
		TimestampTz at;
		int64		id;
		bytea	   *vector;

		CHECK_FOR_INTERRUPTS();
		rows++;
		if (isnull)
			continue;
		caller = MemoryContextSwitchTo(row);
		if (VARATT_IS_EXTENDED(DatumGetPointer(user_id))
			&& !VARATT_IS_SHORT(DatumGetPointer(user_id)))
			user_id = PointerGetDatum(PG_DETOAST_DATUM_PACKED(user_id));
		entry = idmap_lookup(map, (const struct varlena *) DatumGetPointer(user_id));
		if (entry != NULL)
		{
			l = &latest[entry->user];
			heap_deform_tuple(tuple, desc, values, nulls);
			at = DatumGetTimestampTz(values[s->shape.snapshot_at_at - 1]);
			id = DatumGetInt64(values[s->shape.id_at - 1]);
			if (!l->found || at > l->snapshot_at || (at == l->snapshot_at && id > l->snapshot_id))
			{
				l->found = true;
				l->scored = false;
				l->snapshot_at = at;
				l->snapshot_id = id;
				l->seen = rows;
				vector = loaded_vector(values[s->shape.layout_at - 1], nulls[s->shape.layout_at - 1],
									   values[s->shape.vector_at - 1], nulls[s->shape.vector_at - 1]);
				if (vector != NULL)
				{
					seen[q->rows] = rows;
					pending_add(q, vector, entry->user);
					if (q->rows == q->capacity)
						scan_score(q, seen, latest);
				}
			}
		}
		MemoryContextSwitchTo(caller);
		MemoryContextReset(row);
	}
	table_endscan(scan);
	scan_score(q, seen, latest);

	for (int i = 0; i < b->n; i++)
	{
		Latest	   *l;

		if (b->user_nulls[i] || !(l = &latest[user_of[i]])->found)
			continue;
		b->found[i] = true;
		b->snapshot_ids[i] = Int64GetDatum(l->snapshot_id);
		b->snapshot_ats[i] = TimestampTzGetDatum(l->snapshot_at);
		if (l->scored)
			decide(b, i, l->p, v);
		else
			left[nleft++] = i;
	}
	idmap_destroy(map);
	return nleft;
}

/* The batch through the index: walking it in its order of ids (walk_order), else a lookup
 * from the root per id in input order (sorting the ids for lookups from the root gained
 * nothing measurable, the heap's order matters as much, docs/benchmarks.md). Returns how
 * many elements it left to PL/Python, their positions in *left. */
static int
index_batch(Snapshots *s, Batch *b, int *left, Pending *q, MemoryContext row, const Verdicts *v)
{
	Walk		walk;
	int			count,
				nleft = 0;
	int		   *order = walk_order(s, b, &walk, &count);

	if (order != NULL)
		elog(DEBUG1, "blink: the batch walks the index in its order of ids");
	else
		count = b->n;
	for (int k = 0; k < count; k++)
	{
		int			i = order != NULL ? order[k] : k;
		bool		isnull;

		CHECK_FOR_INTERRUPTS();
		if (b->user_nulls[i]
			|| !(order != NULL ? walk_latest(&walk, s, b->users[i])
				 : snapshots_latest(s, b->users[i])))
			continue;
		b->found[i] = true;
		b->snapshot_ids[i] = slot_getattr(s->slot, s->shape.id_at, &isnull);
		b->snapshot_ats[i] = slot_getattr(s->slot, s->shape.snapshot_at_at, &isnull);
		pending_add_slot(q, s, i, left, &nleft, row);
		if (q->rows == q->capacity)
			pending_score(q, b, v);
	}
	pending_score(q, b, v);
	return nleft;
}

/* Score the batch's stored vectors of the champion's layout; returns how many elements it
 * left (their positions in *left: a snapshot it cannot score here), or -1 when it cannot
 * take the batch at all (see champion_here; no policy; no library file here yet). */
static int
score_in_c(Batch *b, int *left)
{
	Snapshots	s;
	Pending		q;
	MemoryContext row;
	Verdicts	v;
	int			nleft;

	if (!champion_here() || !policy_known || !open_champion_library() || loaded_predict == NULL
		|| !snapshots_open(&s))
		return -1;
	b->model_id = champion_model_id;
	v.approved = CStringGetTextDatum("approved");
	v.declined = CStringGetTextDatum("declined");
	v.bands = palloc(sizeof(Datum) * policy_bands);
	for (int j = 0; j < policy_bands; j++)
		v.bands[j] = CStringGetTextDatum(policy_names[j]);
	q.rows = 0;
	q.capacity = Max(1, Min(b->n, PENDING_BYTES / Max(loaded_bytes, 8)));
	q.matrix = palloc((Size) q.capacity * Max(loaded_bytes, 8));
	q.at = palloc(sizeof(int) * q.capacity);
	q.out = palloc(sizeof(double) * q.capacity);
	row = AllocSetContextCreate(CurrentMemoryContext, "blink batch row", ALLOCSET_SMALL_SIZES);

	if (scans_table(&s, b))
	{
		elog(DEBUG1, "blink: the batch reads the table in order");
		nleft = scan_batch(&s, b, left, &q, row, &v);
	}
	else
		nleft = index_batch(&s, b, left, &q, row, &v);
	snapshots_close(&s);
	MemoryContextDelete(row);
	return nleft;
}

/* One array of blink.score_batch_arrays' record, its elements and their NULL flags. */
static void
field(HeapTupleHeader record, int number, Oid type, Datum **values, bool **nulls, int count)
{
	bool		isnull;
	Datum		array = GetAttributeByNum(record, number, &isnull);
	int			n = 0;

	if (!isnull)
	{
		int16		len;
		bool		byval;
		char		align;

		get_typlenbyvalalign(type, &len, &byval, &align);
		deconstruct_array(DatumGetArrayTypeP(array), type, len, byval, align, values, nulls, &n);
	}
	if (n != count)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("blink.score_batch_arrays returned %d elements for %d users",
							   n, count)));
}

/* Score the elements at *positions (all of them when positions is NULL) through PL/Python
 * (blink.score_batch_arrays: documents, invalid features, the champion its snapshot sees),
 * into the batch; returns the model that scored them. */
static int64
score_in_python(Batch *b, ArrayType *all, const int *positions, int count)
{
	static const Oid argtype[1] = {TEXTARRAYOID};
	Oid			fn = LookupFuncName(list_make2(makeString(SCHEMA), makeString("score_batch_arrays")),
									1, argtype, false);
	ArrayType  *ids = all;
	HeapTupleHeader record;
	Datum		model_id,
			   *probabilities,
			   *decisions,
			   *bands,
			   *snapshot_ids,
			   *epochs;
	bool		isnull,
			   *probability_nulls,
			   *decision_nulls,
			   *band_nulls,
			   *id_nulls,
			   *epoch_nulls;

	if (positions != NULL)
	{
		Datum	   *subset = palloc(sizeof(Datum) * count);

		for (int k = 0; k < count; k++)
			subset[k] = b->users[positions[k]];
		ids = construct_array_builtin(subset, count, TEXTOID);
	}
	record = DatumGetHeapTupleHeader(OidFunctionCall1(fn, PointerGetDatum(ids)));
	model_id = GetAttributeByNum(record, 1, &isnull);
	field(record, 2, FLOAT8OID, &probabilities, &probability_nulls, count);
	field(record, 3, TEXTOID, &decisions, &decision_nulls, count);
	field(record, 4, TEXTOID, &bands, &band_nulls, count);
	field(record, 5, INT8OID, &snapshot_ids, &id_nulls, count);
	field(record, 6, FLOAT8OID, &epochs, &epoch_nulls, count);
	for (int k = 0; k < count; k++)
	{
		int			i = positions != NULL ? positions[k] : k;

		b->scored[i] = !probability_nulls[k] && !decision_nulls[k] && !band_nulls[k];
		b->probabilities[i] = probabilities[k];
		b->decisions[i] = decisions[k];
		b->bands[i] = bands[k];
		b->found[i] = !id_nulls[k] && !epoch_nulls[k];
		b->snapshot_ids[i] = snapshot_ids[k];
		if (b->found[i])
			b->snapshot_ats[i] = DirectFunctionCall1(float8_timestamptz, epochs[k]);
	}
	return isnull ? 0 : DatumGetInt64(model_id);
}

/* The rows of blink_score_batch for ids, in input order, into the caller's result.
 * C scores the stored vectors of the champion's layout; PL/Python (score_in_python) the
 * elements C leaves, or the whole batch when C cannot take it. If the champion changed
 * between the two, PL/Python scores the whole batch again: one call, one model. */
static void
batch_rows(FunctionCallInfo fcinfo, ArrayType *ids)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Batch		b;
	int		   *left;
	int			nleft;

	if (ARR_NDIM(ids) > 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("blink: blink_score_batch takes a one-dimensional array of user ids, "
							   "got %d dimensions", ARR_NDIM(ids))));
	InitMaterializedSRF(fcinfo, 0);
	deconstruct_array_builtin(ids, TEXTOID, &b.users, &b.user_nulls, &b.n);
	b.scored = palloc0(sizeof(bool) * b.n);
	b.found = palloc0(sizeof(bool) * b.n);
	b.probabilities = palloc(sizeof(Datum) * b.n);
	b.decisions = palloc(sizeof(Datum) * b.n);
	b.bands = palloc(sizeof(Datum) * b.n);
	b.snapshot_ids = palloc(sizeof(Datum) * b.n);
	b.snapshot_ats = palloc(sizeof(Datum) * b.n);
	left = palloc(sizeof(int) * b.n);

	nleft = score_in_c(&b, left);
	if (nleft < 0 || (nleft > 0 && score_in_python(&b, NULL, left, nleft) != b.model_id))
		b.model_id = score_in_python(&b, ids, NULL, b.n);

	for (int i = 0; i < b.n; i++)
	{
		Datum		values[7] = {b.users[i], b.probabilities[i], b.decisions[i], b.bands[i],
		Int64GetDatum(b.model_id), b.snapshot_ids[i], b.snapshot_ats[i]};
		bool		nulls[7] = {b.user_nulls[i], !b.scored[i], !b.scored[i], !b.scored[i],
		false, !b.found[i], !b.found[i]};

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
}

PG_FUNCTION_INFO_V1(blink_score_batch_v2);

/* public.blink_score_batch(user_ids text[]) -> its rows, in input order. The function
 * itself, not a SQL wrapper over it: PostgreSQL does not inline a SQL function whose
 * argument is a sub-select (blink_score_batch(ARRAY(SELECT ...))), and the wrapper then
 * copied every row into a tuplestore of its own (~0.3-0.45 us a row, docs/benchmarks.md).
 * blink.batch_user_ids keeps the rule on the batch's size: it raises for too many ids. */
Datum
blink_score_batch_v2(PG_FUNCTION_ARGS)
{
	static const Oid argtype[1] = {TEXTARRAYOID};
	Oid			check = LookupFuncName(list_make2(makeString(SCHEMA), makeString("batch_user_ids")),
									   1, argtype, false);

	batch_rows(fcinfo, DatumGetArrayTypeP(OidFunctionCall1(check, PG_GETARG_DATUM(0))));
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(blink_score_batch_v1);

/* blink.score_batch(user_ids text[]), the C half of the SQL blink_score_batch that blink
 * defined before blink_score_batch_v2: kept so that a server given this module before
 * `alembic upgrade head` redefines the function still answers. */
Datum
blink_score_batch_v1(PG_FUNCTION_ARGS)
{
	batch_rows(fcinfo, PG_GETARG_ARRAYTYPE_P(0));
	return (Datum) 0;
}
