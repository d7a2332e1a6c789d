/*
 * A small hash map from strings to slot numbers, so that finding a
 * container by name or UUID costs the same with ten or a hundred thousand
 * containers on a datastore.
 */
#ifndef VSM_STRMAP_H
#define VSM_STRMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
	char **keys;     /* NULL: empty; VSM_STRMAP_GONE: deleted */
	uint32_t *vals;
	size_t cap, used, live;
} vsm_strmap;

void vsm_strmap_clear(vsm_strmap *m);
/* Set @key to @val (the key is copied). */
int vsm_strmap_put(vsm_strmap *m, const char *key, uint32_t val);
bool vsm_strmap_get(const vsm_strmap *m, const char *key, uint32_t *val);
void vsm_strmap_del(vsm_strmap *m, const char *key);

#endif /* VSM_STRMAP_H */
