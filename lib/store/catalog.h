/*
 * The context's catalog: one SQLite file in the state directory holding
 * the inventory (datastores, hosts, links), a cache of container records
 * tagged with the datastore generation they were read at, and the
 * workflow journal. Losing it loses no VM data: a rescan rebuilds the cache.
 */
#ifndef VSM_CATALOG_H
#define VSM_CATALOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct vsm_catalog vsm_catalog;

int vsm_catalog_open(vsm_catalog **out, const char *path);
void vsm_catalog_close(vsm_catalog *cat);

/* Run one statement; @types says how to bind the variadic arguments:
 * 's' const char * (NULL binds NULL), 'i' int64_t. */
int vsm_catalog_exec(vsm_catalog *cat, const char *sql, const char *types, ...);

/* Run a query and hand each row's columns as text (NULL for SQL NULL) to
 * @row; a non-zero return from @row stops and is returned. */
typedef int (*vsm_catalog_row_cb)(void *payload, int ncol, const char *const *cols);
int vsm_catalog_query(vsm_catalog *cat, vsm_catalog_row_cb row, void *payload,
		      const char *sql, const char *types, ...);

/* Number of rows a query returns (for existence checks). */
int vsm_catalog_count(vsm_catalog *cat, int64_t *out, const char *sql,
		      const char *types, ...);

int vsm_catalog_begin(vsm_catalog *cat);
int vsm_catalog_commit(vsm_catalog *cat);
void vsm_catalog_rollback(vsm_catalog *cat);

/* Rowid of the last insert. */
int64_t vsm_catalog_last_id(vsm_catalog *cat);

/* Column 0 of every row, as an array of strings (free with
 * vsm_strv_free). */
int vsm_catalog_strings(vsm_catalog *cat, char ***out, size_t *count,
			const char *sql, const char *types, ...);
void vsm_strv_free(char **v, size_t n);

#endif /* VSM_CATALOG_H */
