/*
 * Suite "records": the metadata device layout, atomic record replacement,
 * and refusal of damaged superblocks, generation blocks and records.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"
#include "bdev.h"
#include "meta.h"
#include "record.h"

static char *dir;
static char *path;

static void setup(void)
{
	dir = tu_dir("meta");
	ck_assert(asprintf(&path, "%s/meta", dir) > 0);
	/* Sparse, as the file backend makes it. */
	ck_assert(truncate(path, 0) == 0 || 1);
	int fd = open(path, O_CREAT | O_RDWR, 0644);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)vsm_meta_default_size(512)), 0);
	close(fd);
}

static void teardown(void)
{
	free(path);
	free(dir);
}

static vsm_meta *meta_open(bool format)
{
	vsm_bdev *b = NULL;
	vsm_meta *m = NULL;

	ck_vsm(vsm_bdev_open_path(&b, path, 0));
	ck_vsm(vsm_meta_open(&m, b, "t", format));
	return m;
}

/* Flip one byte of the file at @off. */
static void poke(uint64_t off)
{
	int fd = open(path, O_RDWR);
	unsigned char c = 0;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x5a;
	ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static uint64_t copy_off(const vsm_meta *m, uint32_t slot, int copy)
{
	return m->geom.record_off + ((uint64_t)slot * 2 + (uint64_t)copy) * m->geom.record_size;
}

/* Bytes before the payload in a layout-2 copy without continuations. */
#define HDR2 80

static char *slot_get(vsm_meta *m, uint32_t slot, vsm_slot_state *st)
{
	vsm_slot_info si;
	char *p;

	ck_vsm(vsm_meta_slot_read(m, slot, &si));
	*st = si.state;
	p = si.payload;
	si.payload = NULL;
	vsm_slot_info_clear(&si);
	return p;
}

static int put(vsm_meta *m, uint32_t slot, const char *payload, size_t len)
{
	return vsm_meta_slot_write(m, slot, payload, len, 1, NULL, 0, NULL);
}

START_TEST(format_then_reopen)
{
	vsm_meta *m = meta_open(true);
	vsm_meta_geom g = m->geom;
	uint64_t gen = 0;

	ck_vsm(vsm_meta_generation(m, &gen));
	ck_assert_uint_eq(gen, 1);
	vsm_meta_close(m);
	m = meta_open(false);
	ck_assert_str_eq(m->geom.uuid, g.uuid);
	ck_assert_uint_eq(m->geom.slot_count, g.slot_count);
	ck_assert_uint_eq(m->geom.record_off, g.record_off);
	ck_assert_uint_ge(m->geom.record_off, m->geom.lease_off +
			  (uint64_t)m->geom.lease_block * m->geom.max_hosts +
			  VSM_META_LEASE_BYTES(&m->geom) * (m->geom.base_slots + 1));
	vsm_meta_close(m);
}
END_TEST

START_TEST(blank_not_formatted_without_asking)
{
	vsm_bdev *b = NULL;
	vsm_meta *m = NULL;

	ck_vsm(vsm_bdev_open_path(&b, path, 0));
	ck_vsm_refused(vsm_meta_open(&m, b, "t", false), VSM_ENOTFOUND, "not formatted");
}
END_TEST

START_TEST(generation_bumps)
{
	vsm_meta *m = meta_open(true);
	uint64_t gen = 0;

	ck_vsm(vsm_meta_set_generation(m, 2));
	ck_vsm(vsm_meta_set_generation(m, 3));
	ck_vsm(vsm_meta_generation(m, &gen));
	ck_assert_uint_eq(gen, 3);
	poke(m->geom.gen_off + 9);
	ck_vsm_refused(vsm_meta_generation(m, &gen), VSM_ECORRUPT, "generation block");
	vsm_meta_close(m);
}
END_TEST

START_TEST(record_replace_alternates_copies)
{
	vsm_meta *m = meta_open(true);
	vsm_slot_state st;
	char *p;

	p = slot_get(m, 5, &st);
	ck_assert_int_eq(st, VSM_SLOT_EMPTY);
	ck_vsm(put(m, 5, "{\"v\":1}", 7));
	ck_vsm(put(m, 5, "{\"v\":2}", 7));
	ck_vsm(put(m, 5, "{\"v\":3}", 7));
	p = slot_get(m, 5, &st);
	ck_assert_int_eq(st, VSM_SLOT_USED);
	ck_assert_str_eq(p, "{\"v\":3}");
	free(p);
	ck_vsm(put(m, 5, NULL, 0));
	p = slot_get(m, 5, &st);
	ck_assert_int_eq(st, VSM_SLOT_FREE);
	ck_assert_ptr_null(p);
	ck_vsm_refused(put(m, m->geom.slot_count, "{}", 2), VSM_EINVAL,
		       "out of range");
	vsm_meta_close(m);
}
END_TEST

START_TEST(torn_write_reads_old_version)
{
	vsm_meta *m = meta_open(true);
	vsm_slot_state st;
	char *p;

	ck_vsm(put(m, 2, "{\"v\":1}", 7)); /* copy 0 */
	ck_vsm(put(m, 2, "{\"v\":2}", 7)); /* copy 1 */
	/* A crash half-way through writing v2: its payload is wrong. */
	poke(copy_off(m, 2, 1) + HDR2 + 3);
	p = slot_get(m, 2, &st);
	ck_assert_int_eq(st, VSM_SLOT_USED);
	ck_assert_str_eq(p, "{\"v\":1}");
	free(p);
	/* The next write goes over the torn copy and wins. */
	ck_vsm(put(m, 2, "{\"v\":3}", 7));
	p = slot_get(m, 2, &st);
	ck_assert_str_eq(p, "{\"v\":3}");
	free(p);
	vsm_meta_close(m);
}
END_TEST

START_TEST(damaged_slot_refused_and_kept)
{
	vsm_meta *m = meta_open(true);
	vsm_slot_info si;

	ck_vsm(put(m, 7, "{\"v\":1}", 7));
	poke(copy_off(m, 7, 0) + HDR2);
	ck_vsm(vsm_meta_slot_read(m, 7, &si));
	ck_assert_int_eq(si.state, VSM_SLOT_DAMAGED);
	ck_assert_ptr_null(si.payload);
	ck_assert_str_eq(si.reason, "checksum mismatch");
	vsm_slot_info_clear(&si);
	ck_vsm_refused(put(m, 7, "{}", 2), VSM_ECORRUPT, "slot 7");
	/* Garbage that was never a record is damage too. */
	poke(copy_off(m, 9, 1));
	ck_vsm(vsm_meta_slot_read(m, 9, &si));
	ck_assert_int_eq(si.state, VSM_SLOT_DAMAGED);
	vsm_slot_info_clear(&si);
	vsm_meta_close(m);
}
END_TEST

START_TEST(record_continues_in_other_slots)
{
	vsm_meta *m = meta_open(true);
	size_t big = (size_t)m->geom.record_size * 3 + 123, i;
	char *buf = malloc(big + 1), *p;
	uint32_t cont[8] = {40, 41, 42, 43, 44, 45, 46, 47}, n;
	vsm_slot_state st;

	ck_assert_ptr_nonnull(buf);
	for (i = 0; i < big; i++)
		buf[i] = (char)('a' + i % 26);
	buf[big] = '\0';
	n = vsm_meta_cont_needed(m, big);
	ck_assert_uint_eq(n, 3);
	/* The caller must hand over as many free slots as the record needs. */
	ck_vsm_refused(put(m, 1, buf, big), VSM_EINTERNAL, "continuation");
	ck_vsm(vsm_meta_slot_write(m, 1, buf, big, 5, cont, n, NULL));
	p = slot_get(m, 1, &st);
	ck_assert_int_eq(st, VSM_SLOT_USED);
	ck_assert_str_eq(p, buf);
	free(p);
	p = slot_get(m, 41, &st);
	ck_assert_int_eq(st, VSM_SLOT_CONT);
	ck_assert_ptr_null(p);
	/* A newer, smaller version replaces it in one write; the old pieces
	 * become free slots. */
	ck_vsm(put(m, 1, "{\"v\":2}", 7));
	p = slot_get(m, 1, &st);
	ck_assert_str_eq(p, "{\"v\":2}");
	free(p);
	/* A piece that does not belong to the head's version is noticed. */
	ck_vsm(vsm_meta_slot_write(m, 2, buf, big, 6, cont + 4, n, NULL));
	ck_vsm(put(m, cont[5], "{}", 2));
	{
		vsm_slot_info si;

		ck_assert_int_eq(vsm_meta_slot_read(m, 2, &si), -VSM_EBUSY);
	}
	free(buf);
	vsm_meta_close(m);
}
END_TEST

START_TEST(superblock_one_copy_damaged_survives)
{
	vsm_meta *m = meta_open(true);
	char uuid[VSM_UUID_STRLEN + 1];

	memcpy(uuid, m->geom.uuid, sizeof(uuid));
	vsm_meta_close(m);
	poke(30);
	m = meta_open(false);
	ck_assert_str_eq(m->geom.uuid, uuid);
	vsm_meta_close(m);
}
END_TEST

START_TEST(superblock_both_damaged_refused)
{
	vsm_meta *m = meta_open(true);
	vsm_bdev *b = NULL;

	vsm_meta_close(m);
	poke(30);
	poke(4096 + 30);
	ck_vsm(vsm_bdev_open_path(&b, path, 0));
	ck_vsm_refused(vsm_meta_open(&m, b, "t", true), VSM_ECORRUPT, "superblock");
}
END_TEST

/* --- through the public API --- */

static char *find_record(const char *dsdir, const char *needle, uint64_t *off)
{
	char *meta = NULL, *buf;
	FILE *f;
	long size;

	ck_assert(asprintf(&meta, "%s/.vsm/meta", dsdir) > 0);
	f = fopen(meta, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(fread(buf, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	*off = 0;
	for (long i = 0; i + (long)strlen(needle) < size; i++) {
		if (!memcmp(buf + i, needle, strlen(needle))) {
			*off = (uint64_t)i;
			break;
		}
	}
	free(buf);
	ck_assert_msg(*off, "record '%s' not found in %s", needle, meta);
	return meta;
}

START_TEST(damaged_container_record_refused)
{
	char *state = tu_dir("state"), *state2 = tu_dir("state2"), *ds = tu_dir("ds");
	char *uri = tu_uri(ds), *meta;
	vsm_ctx *ctx = tu_ctx(state), *ctx2;
	vsm_container *c = NULL, **list = NULL;
	size_t n = 0;
	uint64_t off;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(tu_create(NULL, ctx, "ds1", "web", 1, 1 << 20));
	ck_vsm(tu_create(NULL, ctx, "ds1", "db", 1, 1 << 20));
	vsm_ctx_free(ctx);
	/* Damage the only copy of web's record, inside its payload. */
	meta = find_record(ds, "\"name\":\"web\"", &off);
	free(meta);
	{
		int fd;
		char *p = NULL;

		ck_assert(asprintf(&p, "%s/.vsm/meta", ds) > 0);
		fd = open(p, O_RDWR);
		ck_assert_int_eq(pwrite(fd, "X", 1, (off_t)off + 9), 1);
		close(fd);
		free(p);
	}
	ctx2 = tu_ctx(state2);
	ck_vsm(vsm_datastore_add(ctx2, "ds1", uri, 0));
	ck_vsm_refused(vsm_container_lookup(&c, ctx2, "ds1", "web"), VSM_ECORRUPT,
		       "damaged (checksum mismatch)");
	ck_assert_ptr_nonnull(strstr(tu_msg(), "slot 0"));
	/* The intact one is still there, and listing skips the damage. */
	ck_vsm(vsm_container_lookup(&c, ctx2, "ds1", "db"));
	vsm_container_free(c);
	ck_vsm(vsm_container_list(&list, &n, ctx2, NULL));
	ck_assert_uint_eq(n, 1);
	ck_assert_str_eq(vsm_container_name(list[0]), "db");
	vsm_container_list_free(list, n);
	/* A new container never reuses the damaged slot. */
	ck_vsm(tu_create(&c, ctx2, "ds1", "new", 1, 1 << 20));
	vsm_container_free(c);
	ck_vsm_refused(vsm_container_lookup(&c, ctx2, "ds1", "web"), VSM_ECORRUPT, "slot 0");
	vsm_ctx_free(ctx2);
	free(uri);
	free(ds);
	free(state);
	free(state2);
}
END_TEST

/* A copy is the record: it encodes to the same JSON. */
START_TEST(record_copy_is_whole)
{
	char *state = tu_dir("state"), *ds = tu_dir("ds"), *uri = tu_uri(ds), *mp = NULL;
	char *a = NULL, *b = NULL;
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	vsm_locator *loc = NULL;
	vsm_record *r = NULL, *copy;
	vsm_slot_info si;
	vsm_bdev *bd = NULL;
	vsm_meta *m = NULL;

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ck_vsm(tu_create(&c, ctx, "ds1", "full", 2, 1 << 20));
	ck_vsm(vsm_checkpoint_create(NULL, c, "one", NULL));
	ck_vsm(vsm_checkpoint_create(NULL, c, "two", NULL));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(&loc, c, "d1", NULL));
	vsm_locator_free(loc);
	ck_assert(asprintf(&mp, "%s/.vsm/meta", ds) > 0);
	ck_vsm(vsm_bdev_open_path(&bd, mp, VSM_BDEV_RDONLY));
	ck_vsm(vsm_meta_open(&m, bd, "ds1", false));
	ck_vsm(vsm_meta_slot_read(m, 0, &si));
	ck_assert_int_eq(si.state, VSM_SLOT_USED);
	ck_vsm(vsm_record_decode(&r, si.payload, si.len, "slot 0"));
	ck_assert_uint_eq(r->n_ckpts, 2);
	ck_assert_uint_eq(r->n_deploys, 1);
	ck_assert_ptr_nonnull(copy = vsm_record_dup(r));
	ck_vsm(vsm_record_encode(&a, r));
	ck_vsm(vsm_record_encode(&b, copy));
	ck_assert_str_eq(a, b);
	free(a);
	free(b);
	vsm_record_free(copy);
	vsm_record_free(r);
	vsm_slot_info_clear(&si);
	vsm_meta_close(m);
	ck_vsm(vsm_device_undeploy(c, "d1", 0));
	ck_vsm(vsm_detach(c, 0));
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	free(mp);
	free(uri);
	free(ds);
	free(state);
}
END_TEST

START_TEST(well_checksummed_nonsense_refused)
{
	char *state = tu_dir("state"), *ds = tu_dir("ds"), *uri = tu_uri(ds), *mp = NULL;
	vsm_ctx *ctx = tu_ctx(state);
	vsm_container *c = NULL;
	vsm_bdev *b = NULL;
	vsm_meta *m = NULL;
	const char *bad = "{\"version\":1,\"name\":\"../../etc\",\"uuid\":\"x\"}";

	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
	vsm_ctx_free(ctx);
	/* A record with a valid checksum whose content we would never write. */
	ck_assert(asprintf(&mp, "%s/.vsm/meta", ds) > 0);
	ck_vsm(vsm_bdev_open_path(&b, mp, 0));
	ck_vsm(vsm_meta_open(&m, b, "ds1", false));
	ck_vsm(put(m, 3, bad, strlen(bad)));
	{
		uint64_t g = 0;

		ck_vsm(vsm_meta_generation(m, &g));
		ck_vsm(vsm_meta_set_generation(m, g + 1));
	}
	vsm_meta_close(m);
	ctx = tu_ctx(state);
	ck_vsm_refused(vsm_container_lookup(&c, ctx, "ds1", "anything"), VSM_ECORRUPT,
		       "slot 3");
	ck_assert_ptr_nonnull(strstr(tu_msg(), "../../etc"));
	vsm_ctx_free(ctx);
	free(mp);
	free(uri);
	free(ds);
	free(state);
}
END_TEST

/* A time too large for 64 bits is refused, not read as -1 (found by the
 * fuzz campaign: such a record decoded, and its re-encoding was then
 * refused as negative, so the record was lost at its first rewrite). */
START_TEST(out_of_range_time_refused)
{
	static const char *const fmt =
		"{\"version\":1,\"name\":\"web\",\"uuid\":\"7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f\","
		"\"ctime\":%s,\"state_key\":null,\"state_size\":0,\"devices\":[{\"name\":\"d0\","
		"\"key\":\"k0\",\"size\":1048576,\"format\":\"raw\",\"chain\":[]}],\"attached_host\":null,"
		"\"deployments\":[],\"destroying\":false,\"lease_version\":0}";
	const char *const bad[] = { "18446744073709551615", "9223372036854775808",
				    "1767266666666666666666666666666666" };
	char json[1024];
	vsm_record *r = NULL;
	size_t i;

	snprintf(json, sizeof(json), fmt, "9223372036854775807");
	ck_vsm(vsm_record_decode(&r, json, strlen(json), "max"));
	ck_assert(r->ctime == INT64_MAX);
	vsm_record_free(r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		snprintf(json, sizeof(json), fmt, bad[i]);
		ck_vsm_refused(vsm_record_decode(&r, json, strlen(json), "big"), VSM_ECORRUPT,
			       "'ctime' is out of range");
		ck_assert_ptr_null(r);
	}
}
END_TEST

/* A checkpoint's backup point ID (lib/backup): kept through a rewrite,
 * absent in older records, refused when it is not a UUID. */
START_TEST(backup_point_field)
{
	static const char *const fmt =
		"{\"version\":1,\"name\":\"web\",\"uuid\":\"7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f\","
		"\"ctime\":1,\"state_key\":null,\"state_size\":0,\"devices\":[{\"name\":\"d0\","
		"\"key\":\"top\",\"size\":1048576,\"format\":\"qcow2\",\"chain\":[{\"key\":\"l1\","
		"\"format\":\"raw\"}]}],\"attached_host\":null,\"deployments\":[],\"destroying\":false,"
		"\"lease_version\":0,\"checkpoints\":[{\"name\":\"c1\",\"parent\":null,\"ctime\":1,"
		"\"state_key\":null,\"state_size\":0,\"state_sum\":\"0000000000000000\"%s,"
		"\"layers\":[{\"device\":\"d0\",\"key\":\"l1\"}]}],\"current_checkpoint\":\"c1\","
		"\"layers\":[{\"key\":\"l1\",\"format\":\"raw\",\"backing\":null,\"backing_format\":null,"
		"\"cid\":\"0b7e4c1a-3f2d-4a9e-8c6b-5d1f2e3a4b5c\",\"managed\":true}]}";
	const char *const bad[] = { ",\"point\":\"x\"", ",\"point\":7",
				    ",\"point\":\"0b7e4c1a-3f2d-4a9e-8c6b-5d1f2e3a4b5cX\"" };
	char json[2048], *out = NULL;
	vsm_record *r = NULL, *again = NULL;
	size_t i;

	snprintf(json, sizeof(json), fmt, "");
	ck_vsm(vsm_record_decode(&r, json, strlen(json), "old"));
	ck_assert_str_eq(r->ckpts[0].point, "");
	vsm_record_free(r);
	r = NULL;
	snprintf(json, sizeof(json), fmt, ",\"point\":\"5f1d7c2e-0a4b-4e8f-9c3d-6b2a1e0f7d98\"");
	ck_vsm(vsm_record_decode(&r, json, strlen(json), "new"));
	ck_assert_str_eq(r->ckpts[0].point, "5f1d7c2e-0a4b-4e8f-9c3d-6b2a1e0f7d98");
	ck_vsm(vsm_record_encode(&out, r));
	ck_vsm(vsm_record_decode(&again, out, strlen(out), "rewritten"));
	ck_assert_str_eq(again->ckpts[0].point, r->ckpts[0].point);
	free(out);
	vsm_record_free(again);
	vsm_record_free(r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		snprintf(json, sizeof(json), fmt, bad[i]);
		ck_assert_int_eq(vsm_record_decode(&r, json, strlen(json), "bad"), -VSM_ECORRUPT);
		ck_assert_ptr_null(r);
	}
}
END_TEST

/* A golden image's content ID in its unmanaged layer-table entry (0.2):
 * absent in older records, kept through a rewrite, and a damaged one
 * refused. */
START_TEST(golden_cid_field)
{
	static const char *const fmt =
		"{\"version\":1,\"name\":\"web\",\"uuid\":\"7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f\","
		"\"ctime\":1,\"state_key\":null,\"state_size\":0,\"devices\":[{\"name\":\"d0\","
		"\"key\":\"top\",\"size\":1048576,\"format\":\"qcow2\",\"chain\":[{\"key\":\"gold\","
		"\"format\":\"qcow2\"}]}],\"attached_host\":null,\"deployments\":[],"
		"\"destroying\":false,\"lease_version\":0,\"checkpoints\":[],"
		"\"current_checkpoint\":null,\"layers\":[{\"key\":\"gold\","
		"\"format\":\"qcow2\",\"backing\":null,\"backing_format\":null,\"cid\":%s,"
		"\"managed\":false}]}";
	const char *const bad[] = { "\"df24f07e-ff74-802a-a68d-1c93f4f99cdX\"", "\"\"", "7",
				    "\"df24f07e-ff74-802a-a68d-1c93f4f99cd4-\"" };
	char json[2048], *out = NULL;
	vsm_record *r = NULL, *again = NULL;
	size_t i;

	snprintf(json, sizeof(json), fmt, "null");
	ck_vsm(vsm_record_decode(&r, json, strlen(json), "old"));
	ck_assert_ptr_null(r->layers[0].cid);
	vsm_record_free(r);
	r = NULL;
	snprintf(json, sizeof(json), fmt, "\"df24f07e-ff74-802a-a68d-1c93f4f99cd4\"");
	ck_vsm(vsm_record_decode(&r, json, strlen(json), "new"));
	ck_assert_str_eq(r->layers[0].cid, "df24f07e-ff74-802a-a68d-1c93f4f99cd4");
	ck_assert(!r->layers[0].managed);
	ck_vsm(vsm_record_encode(&out, r));
	ck_vsm(vsm_record_decode(&again, out, strlen(out), "rewritten"));
	ck_assert_str_eq(again->layers[0].cid, r->layers[0].cid);
	free(out);
	vsm_record_free(again);
	vsm_record_free(r);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = NULL;
		snprintf(json, sizeof(json), fmt, bad[i]);
		ck_assert_int_eq(vsm_record_decode(&r, json, strlen(json), "bad"), -VSM_ECORRUPT);
		ck_assert_ptr_null(r);
	}
}
END_TEST

static Suite *records_suite(void)
{
	Suite *s = suite_create("records");
	TCase *tc = tcase_create("meta");
	TCase *api = tcase_create("api");

	tcase_add_unchecked_fixture(tc, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, format_then_reopen);
	tcase_add_test(tc, blank_not_formatted_without_asking);
	tcase_add_test(tc, generation_bumps);
	tcase_add_test(tc, record_replace_alternates_copies);
	tcase_add_test(tc, torn_write_reads_old_version);
	tcase_add_test(tc, damaged_slot_refused_and_kept);
	tcase_add_test(tc, backup_point_field);
	tcase_add_test(tc, golden_cid_field);
	tcase_add_test(tc, record_continues_in_other_slots);
	tcase_add_test(tc, record_copy_is_whole);
	tcase_add_test(tc, superblock_one_copy_damaged_survives);
	tcase_add_test(tc, superblock_both_damaged_refused);
	suite_add_tcase(s, tc);
	tcase_add_unchecked_fixture(api, tu_root_setup, tu_root_teardown);
	tcase_add_test(api, damaged_container_record_refused);
	tcase_add_test(api, well_checksummed_nonsense_refused);
	tcase_add_test(api, out_of_range_time_refused);
	suite_add_tcase(s, api);
	return s;
}

int main(void)
{
	return tu_run(records_suite());
}
