/*
 * qcow2: keeping the allocator off metadata. The allocator takes clusters
 * whose refcount is 0, so a damaged refcount (a refcount-table entry of 0,
 * a block that says 0 for the L1 table) would let data or a new refcount
 * block be written over the header or a table. QEMU checks every write
 * against the metadata it knows; we get the same guarantee more cheaply:
 *  - before the first change of an open image, every cluster of metadata
 *    the engine knows (header, L1 table, refcount table, refcount blocks,
 *    L2 tables, snapshot table, bitmap directory, tables and data) must
 *    have a refcount. An image where one
 *    has none is inconsistent: it stays readable, every change is refused
 *    with the reason, and `check --repair` rebuilds its refcounts;
 *  - after that, clusters the engine itself allocates get their refcount
 *    as they are taken, so a cluster with refcount 0 is never metadata;
 *    and every allocation is still checked against the fixed areas
 *    (header, L1 table, refcount table), which costs three comparisons.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cow_int.h"

/* Clusters [a, a+n) and [b, b+m) share one. */
static bool clusters_meet(uint64_t a, uint64_t n, uint64_t b, uint64_t m)
{
	return n && m && a < b + m && b < a + n;
}

static uint64_t clusters_of(const struct qcow2 *q, uint64_t bytes)
{
	return (bytes + q->cs - 1) / q->cs;
}

/* Remember why the image must not change, and say it. */
static int inconsistent(struct qcow2 *q, const char *what, uint64_t off)
{
	char *why = NULL;

	if (asprintf(&why, "%s at offset 0x%llx has refcount 0, so new data could be "
		     "written over it", what, (unsigned long long)off) < 0)
		why = NULL;
	free(q->inconsistent);
	q->inconsistent = why;
	return qc_refuse_inconsistent(q);
}

int qc_refuse_inconsistent(const struct qcow2 *q)
{
	return vsm_err(VSM_ECORRUPT, "%s: image is inconsistent (%s); it can be read but "
		       "not changed; repair it with 'vsmctl image check --repair'", q->label,
		       q->inconsistent ? q->inconsistent : "out of memory describing it");
}

/* Every cluster of [off, off+bytes) must have a refcount. */
static int need_refs(struct qcow2 *q, const char *what, uint64_t off, uint64_t bytes)
{
	uint64_t cl, last = (off + bytes - 1) / q->cs, v;
	int rc;

	for (cl = off / q->cs; bytes && cl <= last; cl++) {
		if ((rc = qc_rc_get(q, cl, &v)) < 0)
			return rc;
		if (v == 0)
			return inconsistent(q, what, cl * q->cs);
	}
	return 0;
}

int qc_meta_verify(struct qcow2 *q)
{
	uint64_t i, off;
	char what[64];
	int rc;

	if (q->meta_verified)
		return 0;
	if (q->inconsistent)
		return qc_refuse_inconsistent(q);
	if ((rc = need_refs(q, "the header", 0, q->cs)) < 0 ||
	    (rc = need_refs(q, "the L1 table", q->l1_offset, (uint64_t)q->l1_size * 8)) < 0 ||
	    (rc = need_refs(q, "the refcount table", q->rt_offset,
			    (uint64_t)q->rt_clusters * q->cs)) < 0 ||
	    (q->nb_snapshots &&
	     (rc = need_refs(q, "the snapshot table", q->snapshots_offset, q->cs)) < 0))
		return rc;
	if ((rc = qc_bm_verify_refs(q, need_refs)) < 0)
		return rc;
	for (i = 0; i < q->rt_entries; i++) {
		if (!(off = q->rt[i]) || (off & QC_RT_RESERVED) || off >= q->file_end)
			continue; /* absent, or refused where it is read */
		snprintf(what, sizeof(what), "refcount block %llu", (unsigned long long)i);
		if ((rc = need_refs(q, what, off, q->cs)) < 0)
			return rc;
	}
	for (i = 0; i < q->l1_size; i++) {
		if (!(off = q->l1[i] & QC_OFFSET_MASK) || off >= q->file_end)
			continue;
		snprintf(what, sizeof(what), "the L2 table of L1 entry %llu",
			 (unsigned long long)i);
		if ((rc = need_refs(q, what, off, q->cs)) < 0)
			return rc;
	}
	q->meta_verified = true;
	return 0;
}

int qc_alloc_check(struct qcow2 *q, uint64_t start, uint64_t n)
{
	const char *what = NULL;
	uint64_t at = 0;

	if (clusters_meet(start, n, 0, 1))
		what = "the header";
	else if (clusters_meet(start, n, q->l1_offset / q->cs,
			       clusters_of(q, (uint64_t)q->l1_size * 8)))
		what = "the L1 table", at = q->l1_offset;
	else if (clusters_meet(start, n, q->rt_offset / q->cs, q->rt_clusters))
		what = "the refcount table", at = q->rt_offset;
	if (!what)
		return 0;
	return inconsistent(q, what, at);
}
