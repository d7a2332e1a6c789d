/*
 * SQLite catalog: schema and a few typed helpers so that callers write
 * plain SQL with bound parameters and never build SQL from strings.
 */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "internal.h"

struct vsm_catalog {
	sqlite3 *db;
	char *path;
};

#define SCHEMA_VERSION "2"

static const char *const schema =
	"CREATE TABLE IF NOT EXISTS settings(key TEXT PRIMARY KEY, value TEXT);"
	"CREATE TABLE IF NOT EXISTS datastores("
	"  name TEXT PRIMARY KEY, uri TEXT NOT NULL, uuid TEXT NOT NULL,"
	"  generation INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS hosts("
	"  name TEXT PRIMARY KEY, hypervisor_uri TEXT);"
	"CREATE TABLE IF NOT EXISTS links("
	"  host TEXT NOT NULL, datastore TEXT NOT NULL,"
	"  PRIMARY KEY(host, datastore));"
	/* Cache of the datastores' record slots: each row as read from the
	 * datastore, with the generation its slot was written at (rows only
	 * move forward). 'datastores.generation' is how far they reach. */
	"CREATE TABLE IF NOT EXISTS records("
	"  datastore TEXT NOT NULL, slot INTEGER NOT NULL, state INTEGER NOT NULL,"
	"  name TEXT, uuid TEXT, record TEXT, seq INTEGER NOT NULL DEFAULT 0,"
	"  stamp INTEGER NOT NULL DEFAULT 0, cont TEXT, reason TEXT,"
	"  PRIMARY KEY(datastore, slot));"
	/* Placement (lib/ops/reserve.c): each datastore's space figures as
	 * last computed live, for VSM_PLACE_CACHED. */
	"CREATE TABLE IF NOT EXISTS ds_space("
	"  datastore TEXT PRIMARY KEY, total INTEGER NOT NULL, free INTEGER NOT NULL,"
	"  reserved INTEGER NOT NULL, committed INTEGER NOT NULL,"
	"  provisioned INTEGER NOT NULL, containers INTEGER NOT NULL,"
	"  caw INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
	/* Workflow journal: each step is written before it runs, with how to
	 * undo it (mode 'undo') or how to finish it (mode 'redo'). */
	"CREATE TABLE IF NOT EXISTS workflows("
	"  id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL,"
	"  datastore TEXT NOT NULL, subject TEXT NOT NULL, started INTEGER NOT NULL,"
	"  owner TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS workflow_steps("
	"  workflow INTEGER NOT NULL, seq INTEGER NOT NULL, mode TEXT NOT NULL,"
	"  action TEXT NOT NULL, arg TEXT NOT NULL,"
	"  PRIMARY KEY(workflow, seq));";

/* Host tags and limits (placement phase 2), in tables of their own, and
 * two indexes: an existing catalog of schema 2 gains them in place at its
 * next open (no column of an existing table changes, so the schema
 * version stays, and a library from before them still opens the catalog
 * and simply ignores them). vsm_host_remove deletes a host's rows. */
static const char *const host_schema =
	"CREATE TABLE IF NOT EXISTS host_tags("
	"  host TEXT NOT NULL, key TEXT NOT NULL, value TEXT,"
	"  PRIMARY KEY(host, key));"
	"CREATE TABLE IF NOT EXISTS host_limits("
	"  host TEXT PRIMARY KEY, max_containers INTEGER NOT NULL DEFAULT 0);"
	/* Placement asks for the hosts of a datastore, for the containers
	 * attached to a host and for a container by name on any datastore
	 * (anti-affinity), with ten thousand hosts and as many containers. */
	"CREATE INDEX IF NOT EXISTS links_by_datastore ON links(datastore);"
	"CREATE INDEX IF NOT EXISTS records_by_host ON"
	"  records(json_extract(record, '$.attached_host')) WHERE state = 1;"
	"CREATE INDEX IF NOT EXISTS records_by_name ON records(name) WHERE state = 1;"
	/* Workflow template runs (lib/flow, doc/workflows.md): the template
	 * and parameters a run was started with, and each step's resolved
	 * arguments, what undo needs (pre), result and state, written before
	 * and after the step runs. Tables of their own, as host_tags. */
	"CREATE TABLE IF NOT EXISTS flow_runs("
	"  id TEXT PRIMARY KEY, seq INTEGER NOT NULL, template TEXT NOT NULL,"
	"  doc TEXT NOT NULL, params TEXT NOT NULL, state TEXT NOT NULL,"
	"  owner TEXT NOT NULL, started INTEGER NOT NULL, ended INTEGER NOT NULL DEFAULT 0,"
	"  error TEXT, cancel INTEGER NOT NULL DEFAULT 0);"
	"CREATE TABLE IF NOT EXISTS flow_steps("
	"  run TEXT NOT NULL, idx INTEGER NOT NULL, id TEXT NOT NULL, op TEXT NOT NULL,"
	"  state TEXT NOT NULL, args TEXT, pre TEXT, result TEXT, error TEXT,"
	"  PRIMARY KEY(run, idx));";

static int db_error(vsm_catalog *cat, const char *what)
{
	int code = sqlite3_errcode(cat->db);

	return vsm_err(code == SQLITE_FULL ? VSM_ENOSPC :
		       code == SQLITE_BUSY || code == SQLITE_LOCKED ? VSM_EBUSY :
		       code == SQLITE_CORRUPT || code == SQLITE_NOTADB ? VSM_ECORRUPT : VSM_EIO,
		       "catalog '%s': %s: %s", cat->path, what, sqlite3_errmsg(cat->db));
}

int vsm_catalog_open(vsm_catalog **out, const char *path)
{
	vsm_catalog *cat = vsm__calloc(1, sizeof(*cat));
	int64_t ver = 0;
	int rc;

	if (!cat || !(cat->path = vsm__strdup(path))) {
		free(cat);
		return -VSM_ENOMEM;
	}
	if (sqlite3_open_v2(path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		rc = cat->db ? db_error(cat, "cannot open")
			     : vsm_err(VSM_ENOMEM, "catalog '%s': out of memory", path);
		goto fail;
	}
	sqlite3_busy_timeout(cat->db, 30000);
	/* WAL: readers never wait for a writer, and a commit is one sync of
	 * the log, which several processes of one host share. */
	if (sqlite3_exec(cat->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL,
			 NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(cat->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(cat, "cannot open");
		goto fail;
	}
	if (sqlite3_exec(cat->db, schema, NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_exec(cat->db, host_schema, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(cat, "cannot create schema");
		sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	/* Schema 1 (0.1) cached records in tables of another shape; a cache
	 * is rebuilt from the datastores, so they are dropped. */
	if ((rc = vsm_catalog_count(cat, &ver, "SELECT 1 FROM settings WHERE key='schema' "
				   "AND value = '1'", NULL)) == 0 && ver &&
	    sqlite3_exec(cat->db, "DROP TABLE IF EXISTS containers; DROP TABLE IF EXISTS "
			 "damaged; UPDATE datastores SET generation = 0; UPDATE settings SET "
			 "value = '" SCHEMA_VERSION "' WHERE key = 'schema';", NULL, NULL,
			 NULL) != SQLITE_OK)
		rc = db_error(cat, "cannot upgrade schema");
	if (rc == 0 && (rc = vsm_catalog_count(cat, &ver, "SELECT 1 FROM settings WHERE "
					       "key='schema' AND value != ?", "s",
					       SCHEMA_VERSION)) == 0 && ver)
		rc = vsm_err(VSM_EVERSION, "catalog '%s' has a schema this library does not "
			     "know", path);
	if (rc == 0)
		rc = vsm_catalog_exec(cat, "INSERT OR IGNORE INTO settings VALUES('schema', ?)",
				      "s", SCHEMA_VERSION);
	if (rc < 0) {
		sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
		goto fail;
	}
	if (sqlite3_exec(cat->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(cat, "cannot create schema");
		goto fail;
	}
	*out = cat;
	return 0;
fail:
	vsm_catalog_close(cat);
	return rc;
}

void vsm_catalog_close(vsm_catalog *cat)
{
	if (!cat)
		return;
	sqlite3_close(cat->db);
	free(cat->path);
	free(cat);
}

static int prepare(vsm_catalog *cat, sqlite3_stmt **st, const char *sql,
		   const char *types, va_list ap)
{
	int i;

	if (sqlite3_prepare_v2(cat->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_error(cat, "bad statement");
	for (i = 0; types && types[i]; i++) {
		int r;

		if (types[i] == 's') {
			const char *s = va_arg(ap, const char *);

			r = s ? sqlite3_bind_text(*st, i + 1, s, -1, SQLITE_TRANSIENT)
			      : sqlite3_bind_null(*st, i + 1);
		} else {
			r = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
		}
		if (r != SQLITE_OK) {
			sqlite3_finalize(*st);
			return db_error(cat, "cannot bind");
		}
	}
	return 0;
}

static int run(vsm_catalog *cat, vsm_catalog_row_cb row, void *payload,
	       const char *sql, const char *types, va_list ap)
{
	sqlite3_stmt *st;
	int rc = prepare(cat, &st, sql, types, ap), step;

	if (rc < 0)
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		int n = sqlite3_column_count(st), i;
		const char *cols[16];

		if (!row)
			continue;
		if (n > 16)
			n = 16;
		for (i = 0; i < n; i++)
			cols[i] = (const char *)sqlite3_column_text(st, i);
		if ((rc = row(payload, n, cols)) != 0)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_error(cat, "statement failed");
	sqlite3_finalize(st);
	return rc;
}

int vsm_catalog_exec(vsm_catalog *cat, const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run(cat, NULL, NULL, sql, types, ap);
	va_end(ap);
	return rc;
}

int vsm_catalog_query(vsm_catalog *cat, vsm_catalog_row_cb row, void *payload,
		      const char *sql, const char *types, ...)
{
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run(cat, row, payload, sql, types, ap);
	va_end(ap);
	return rc;
}

static int count_row(void *payload, int ncol, const char *const *cols)
{
	(void)ncol;
	(void)cols;
	(*(int64_t *)payload)++;
	return 0;
}

int vsm_catalog_count(vsm_catalog *cat, int64_t *out, const char *sql,
		      const char *types, ...)
{
	va_list ap;
	int rc;

	*out = 0;
	va_start(ap, types);
	rc = run(cat, count_row, out, sql, types, ap);
	va_end(ap);
	return rc;
}

typedef struct {
	char **v;
	size_t n;
} strv;

static int strv_row(void *payload, int ncol, const char *const *cols)
{
	strv *s = payload;
	char **grown;

	(void)ncol;
	if (!(grown = realloc(s->v, (s->n + 1) * sizeof(*grown))))
		return vsm_err(VSM_ENOMEM, "out of memory");
	s->v = grown;
	if (!(s->v[s->n] = vsm__strdup(cols[0] ? cols[0] : "")))
		return -VSM_ENOMEM;
	s->n++;
	return 0;
}

int vsm_catalog_strings(vsm_catalog *cat, char ***out, size_t *count,
			const char *sql, const char *types, ...)
{
	strv s = {NULL, 0};
	va_list ap;
	int rc;

	va_start(ap, types);
	rc = run(cat, strv_row, &s, sql, types, ap);
	va_end(ap);
	if (rc < 0) {
		vsm_strv_free(s.v, s.n);
		return rc;
	}
	*out = s.v;
	*count = s.n;
	return 0;
}

void vsm_strv_free(char **v, size_t n)
{
	size_t i;

	if (!v)
		return;
	for (i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

int vsm_catalog_begin(vsm_catalog *cat)
{
	return vsm_catalog_exec(cat, "BEGIN IMMEDIATE", NULL);
}

int vsm_catalog_commit(vsm_catalog *cat)
{
	return vsm_catalog_exec(cat, "COMMIT", NULL);
}

void vsm_catalog_rollback(vsm_catalog *cat)
{
	sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t vsm_catalog_last_id(vsm_catalog *cat)
{
	return sqlite3_last_insert_rowid(cat->db);
}
