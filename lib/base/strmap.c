/*
 * Open addressing with linear probing; deleted entries leave a marker
 * until the table is rebuilt on growth.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "strmap.h"

static char gone_marker;
#define GONE (&gone_marker)

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	while (*s)
		h = (h ^ (uint8_t)*s++) * 1099511628211ull;
	return h;
}

void vsm_strmap_clear(vsm_strmap *m)
{
	size_t i;

	for (i = 0; i < m->cap; i++)
		if (m->keys[i] && m->keys[i] != GONE)
			free(m->keys[i]);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

static size_t find(const vsm_strmap *m, const char *key, bool *found)
{
	size_t i = (size_t)hash(key) & (m->cap - 1), first_gone = (size_t)-1;

	for (;;) {
		if (!m->keys[i]) {
			*found = false;
			return first_gone != (size_t)-1 ? first_gone : i;
		}
		if (m->keys[i] == GONE) {
			if (first_gone == (size_t)-1)
				first_gone = i;
		} else if (!strcmp(m->keys[i], key)) {
			*found = true;
			return i;
		}
		i = (i + 1) & (m->cap - 1);
	}
}

static int grow(vsm_strmap *m)
{
	vsm_strmap n = {0};
	size_t i;

	n.cap = m->cap ? m->cap * 2 : 64;
	if (m->live * 4 < m->cap)
		n.cap = m->cap; /* mostly markers: rebuild at the same size */
	if (!(n.keys = calloc(n.cap, sizeof(*n.keys))) ||
	    !(n.vals = calloc(n.cap, sizeof(*n.vals)))) {
		free(n.keys);
		return vsm_err(VSM_ENOMEM, "out of memory");
	}
	for (i = 0; i < m->cap; i++) {
		bool f;
		size_t j;

		if (!m->keys[i] || m->keys[i] == GONE)
			continue;
		j = find(&n, m->keys[i], &f);
		n.keys[j] = m->keys[i];
		n.vals[j] = m->vals[i];
		n.used++;
		n.live++;
	}
	free(m->keys);
	free(m->vals);
	*m = n;
	return 0;
}

int vsm_strmap_put(vsm_strmap *m, const char *key, uint32_t val)
{
	bool found;
	size_t i;
	int rc;

	if ((m->used + 1) * 4 > m->cap * 3 && (rc = grow(m)) < 0)
		return rc;
	i = find(m, key, &found);
	if (!found) {
		bool reuse = m->keys[i] == GONE;

		if (!(m->keys[i] = vsm__strdup(key))) {
			if (reuse)
				m->keys[i] = GONE;
			return -VSM_ENOMEM;
		}
		if (!reuse)
			m->used++;
		m->live++;
	}
	m->vals[i] = val;
	return 0;
}

bool vsm_strmap_get(const vsm_strmap *m, const char *key, uint32_t *val)
{
	bool found;
	size_t i;

	if (!m->cap)
		return false;
	i = find(m, key, &found);
	if (found && val)
		*val = m->vals[i];
	return found;
}

void vsm_strmap_del(vsm_strmap *m, const char *key)
{
	bool found;
	size_t i;

	if (!m->cap)
		return;
	i = find(m, key, &found);
	if (!found)
		return;
	free(m->keys[i]);
	m->keys[i] = GONE;
	m->live--;
}
