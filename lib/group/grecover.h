/*
 * Private interface of group recovery (grecover.c, grecover_run.c): the
 * backup sets of a directory, read strictly, and the chain of sets that
 * leads to a point.
 */
#ifndef VSM_GRECOVER_H
#define VSM_GRECOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vsm/common.h"

typedef struct {
	char *name;
	char uuid[VSM_UUID_STRLEN + 1];
	char *file;            /* the member's backup file, in the directory */
	/* Its recovery plan. */
	unsigned int priority;
	char **after;
	size_t n_after;
	char *mac, *network, *ip, *gateway, *dns;
	int prefix;
} gr_member;

typedef struct {
	char *file;            /* the manifest's name */
	char *group;
	char group_uuid[VSM_UUID_STRLEN + 1];
	char *point;           /* the group checkpoint it was taken at */
	char *base;            /* the point it was taken since; NULL: full */
	int64_t created;
	gr_member *members;
	size_t n_members;
} gr_set;

void gr_set_free(gr_set *s);
/* Read DIR/FILE. */
int gr_set_read(gr_set *s, const char *dir, const char *file);
/* Every set of @dir (all of one group). */
int gr_sets_load(gr_set **out, size_t *count, const char *dir);
/* The sets from the full one to @point (NULL: the newest), oldest first
 * (pointers into @v; free the array only). */
int gr_chain(gr_set ***chain, size_t *len, gr_set *v, size_t n, const char *point,
	     const char *dir);

#endif /* VSM_GRECOVER_H */
