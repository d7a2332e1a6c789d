/*
 * Suite "checkpoint": create/revert/delete/clone/export/import on the file
 * backend, with qemu-img as the oracle (compare, check, info
 * --backing-chain) and reference raw files kept beside the datastore.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "fault_backend.h"
#include "testutil.h"
#include "record.h"
#include "workflow.h"
#include <vsm/checkpoint.h>

#define DEV_SIZE (4u << 20)
#define MAX_DEVS 2
#define MAX_REFS 32

static char *state, *dsdir, *uri, *refdir, *ds2dir;
static const char *ds3dir;
static vsm_ctx *ctx;

/* --- helpers --- */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char *cmd = NULL, *full = NULL;
	va_list ap;
	int st;

	va_start(ap, fmt);
	ck_assert(vasprintf(&cmd, fmt, ap) > 0);
	va_end(ap);
	ck_assert(asprintf(&full, getenv("CKPT_DEBUG") ? "( %s ) 1>&2" : "( %s ) >/dev/null 2>&1",
			   cmd) > 0);
	st = system(full);
	free(cmd);
	free(full);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static char *path_in(const char *dir, const char *name)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void setup(void)
{
	state = tu_dir("state");
	dsdir = tu_dir("ds");
	refdir = tu_dir("ref");
	uri = tu_uri(dsdir);
	ctx = tu_ctx(state);
	ck_vsm(vsm_datastore_add(ctx, "ds1", uri, 0));
}

static void teardown(void)
{
	vsm_ctx_free(ctx);
	ctx = NULL;
	free(ds2dir);
	ds2dir = NULL;
	free(state);
	free(dsdir);
	free(refdir);
	free(uri);
}

/* A container of @n devices: d0 raw, d1 qcow2. */
static vsm_container *make(const char *name, size_t n)
{
	vsm_device_spec specs[MAX_DEVS];
	const vsm_device_spec *ptrs[MAX_DEVS];
	vsm_container_opts opts = VSM_CONTAINER_OPTS_INIT;
	static const char *names[] = { "d0", "d1" };
	vsm_container *c = NULL;
	size_t i;

	for (i = 0; i < n; i++) {
		vsm_device_spec d = VSM_DEVICE_SPEC_INIT;

		d.name = names[i];
		d.size = DEV_SIZE;
		d.format = i % 2 ? VSM_FORMAT_QCOW2 : VSM_FORMAT_RAW;
		specs[i] = d;
		ptrs[i] = &specs[i];
	}
	opts.devices = ptrs;
	opts.n_devices = n;
	opts.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", name, &opts));
	return c;
}

/* Path of device @i's top layer. */
static char *top_path(vsm_container *c, size_t i)
{
	ck_vsm(vsm_container_refresh(c));
	const char *ds = vsm_container_datastore(c);

	return path_in(!strcmp(ds, "ds1") ? dsdir : !strcmp(ds, "ds2") ? ds2dir : ds3dir,
		       vsm_device_key(vsm_container_device(c, i)));
}

/* A second datastore "ds2". */
static void add_ds2(void)
{
	char *u;

	ds2dir = tu_dir("ds2");
	u = tu_uri(ds2dir);
	ck_vsm(vsm_datastore_add(ctx, "ds2", u, 0));
	free(u);
}

/* Write a pattern (from @seed) at a few places of device @i and of the
 * reference file @ref. */
static void scribble(vsm_container *c, size_t i, const char *ref, unsigned int seed)
{
	char *p = top_path(c, i);
	vsm_image *img = NULL;
	uint8_t buf[70000];
	int fd, k;
	size_t j;

	ck_vsm(vsm_image_open(&img, p, NULL));
	fd = open(ref, O_RDWR | O_CREAT, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, DEV_SIZE), 0);
	for (k = 0; k < 4; k++) {
		uint64_t off = ((uint64_t)(seed * 7919u + (unsigned)k * 104729u) % (DEV_SIZE - sizeof(buf)));

		off &= ~(uint64_t)511;
		for (j = 0; j < sizeof(buf); j++)
			buf[j] = (uint8_t)(seed * 31 + (unsigned)k * 17 + j * 13 + (j >> 9));
		ck_vsm(vsm_image_write(img, buf, sizeof(buf), off, 0));
		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), (off_t)off), (ssize_t)sizeof(buf));
	}
	ck_vsm(vsm_image_close(img));
	close(fd);
	free(p);
}

static char *ref_path(const char *tag, size_t i)
{
	char *p = NULL;

	ck_assert(asprintf(&p, "%s/%s.%zu.raw", refdir, tag, i) > 0);
	return p;
}

/* Save reference @from as @to (a snapshot of the expected content). */
static void ref_copy(const char *from_tag, const char *to_tag, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *a = ref_path(from_tag, i), *b = ref_path(to_tag, i);

		ck_assert_int_eq(sh("cp --sparse=always '%s' '%s'", a, b), 0);
		free(a);
		free(b);
	}
}

static void ref_init(const char *tag, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char *p = ref_path(tag, i);
		int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(ftruncate(fd, DEV_SIZE), 0);
		close(fd);
		free(p);
	}
}

/* Every device of @c reads like reference @tag (qemu-img compare). */
static void same_as(vsm_container *c, const char *tag)
{
	size_t i, n = vsm_container_device_count(c);

	for (i = 0; i < n; i++) {
		char *top = top_path(c, i), *ref = ref_path(tag, i);
		const char *fmt = vsm_device_format(vsm_container_device(c, i)) ==
				  VSM_FORMAT_QCOW2 ? "qcow2" : "raw";

		ck_assert_msg(sh("qemu-img compare -f %s -F raw '%s' '%s'", fmt, top, ref) == 0,
			      "container '%s' device %zu differs from reference '%s'",
			      vsm_container_name(c), i, tag);
		ck_assert_msg(sh("qemu-img info --backing-chain -f %s '%s'", fmt, top) == 0,
			      "qemu-img cannot read the chain of '%s'", top);
		free(top);
		free(ref);
	}
}

/* qemu-img check is clean on every qcow2 file of the datastore. */
static void unlink_check(const char *p)
{
	char *q = NULL;

	ck_assert(asprintf(&q, "%s.check", p) > 0);
	unlink(q);
	free(q);
}

static void all_clean_in(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		char *p;

		if (!strstr(e->d_name, ".qcow2"))
			continue;
		p = path_in(dir, e->d_name);
		rc = sh("qemu-img check -f qcow2 '%s' >'%s.check' 2>&1", p, p);
		if (rc != 0) {
			/* Say what qemu-img found: leaks (3) or corruption (2). */
			char *q = NULL, out[1024] = "";
			FILE *f;

			ck_assert(asprintf(&q, "%s.check", p) > 0);
			if ((f = fopen(q, "r"))) {
				out[fread(out, 1, sizeof(out) - 1, f)] = '\0';
				fclose(f);
			}
			ck_abort_msg("'%s' is not clean (qemu-img check exit %d): %s", p, rc, out);
		}
		unlink_check(p);
		ck_assert_msg(sh("qemu-img info --backing-chain '%s'", p) == 0,
			      "'%s' has a chain qemu-img cannot open", p);
		free(p);
	}
	closedir(d);
}

static void all_clean(void)
{
	all_clean_in(dsdir);
	if (ds2dir)
		all_clean_in(ds2dir);
}

/* Bytes allocated by the files of @dir. */
static uint64_t du(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	uint64_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((e = readdir(d))) {
		struct stat st;
		char *p;

		if (e->d_name[0] == '.')
			continue;
		p = path_in(dir, e->d_name);
		if (stat(p, &st) == 0)
			n += (uint64_t)st.st_blocks * 512;
		free(p);
	}
	closedir(d);
	return n;
}

/* State blobs through the callback interfaces. */
typedef struct {
	uint8_t *data;
	size_t size, pos;
} blob;

static int blob_read(void *buf, size_t len, size_t *got, void *payload)
{
	blob *b = payload;
	size_t n = b->size - b->pos < len ? b->size - b->pos : len;

	if (n > 4099)
		n = 4099; /* odd pieces */
	memcpy(buf, b->data + b->pos, n);
	b->pos += n;
	*got = n;
	return 0;
}

static int blob_write(const void *buf, size_t len, void *payload)
{
	blob *b = payload;

	ck_assert_uint_le(b->pos + len, b->size);
	memcpy(b->data + b->pos, buf, len);
	b->pos += len;
	return 0;
}

static blob blob_make(size_t size, unsigned int seed)
{
	blob b = { malloc(size ? size : 1), size, 0 };
	size_t i;

	for (i = 0; i < size; i++)
		b.data[i] = (uint8_t)(seed + i * 7 + (i >> 11));
	return b;
}

static void ckpt(vsm_container *c, const char *name, blob *state_blob)
{
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;

	if (state_blob) {
		state_blob->pos = 0;
		o.state_read = blob_read;
		o.state_payload = state_blob;
		o.state_size = state_blob->size;
	}
	ck_vsm(vsm_checkpoint_create(NULL, c, name, &o));
}

/* --- tests --- */

START_TEST(revert_cycles)
{
	vsm_container *c = make("vm", 2);
	blob s1 = blob_make(3u << 20 | 12345, 1), s2 = blob_make(777, 2), back;
	char *p1 = ref_path("cur", 0), *p2 = ref_path("cur", 1), *sf = path_in(refdir, "s2");
	vsm_checkpoint **list = NULL;
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
	size_t n, i;
	int fd, round;

	ref_init("cur", 2);
	scribble(c, 0, p1, 1);
	scribble(c, 1, p2, 2);
	ref_copy("cur", "c1", 2);
	ckpt(c, "c1", &s1);
	same_as(c, "c1");
	scribble(c, 0, p1, 3);
	scribble(c, 1, p2, 4);
	ref_copy("cur", "c2", 2);
	/* The second blob comes from a file descriptor. */
	fd = open(sf, O_RDWR | O_CREAT | O_TRUNC, 0644);
	ck_assert_int_eq(write(fd, s2.data, s2.size), (ssize_t)s2.size);
	ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
	o.state_fd = fd;
	ck_vsm(vsm_checkpoint_create(NULL, c, "c2", &o));
	close(fd);
	scribble(c, 0, p1, 5);
	scribble(c, 1, p2, 6);
	same_as(c, "cur");
	for (round = 0; round < 2; round++) {
		back = blob_make(s1.size, 0);
		ro.state_write = blob_write;
		ro.state_payload = &back;
		ck_vsm(vsm_checkpoint_revert(c, "c1", &ro));
		ck_assert_uint_eq(back.pos, s1.size);
		ck_assert(memcmp(back.data, s1.data, s1.size) == 0);
		free(back.data);
		same_as(c, "c1");
		back = blob_make(s2.size, 0);
		ro.state_payload = &back;
		ck_vsm(vsm_checkpoint_revert(c, "c2", &ro));
		ck_assert(memcmp(back.data, s2.data, s2.size) == 0);
		free(back.data);
		same_as(c, "c2");
		/* Writes after a revert never reach the checkpoint. */
		ref_copy("c2", "cur", 2);
		scribble(c, 0, p1, 10 + (unsigned)round);
		same_as(c, "cur");
	}
	ck_vsm(vsm_checkpoint_list(&list, &n, c));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_checkpoint_name(list[0]), "c1");
	ck_assert_ptr_null(vsm_checkpoint_parent(list[0]));
	ck_assert_str_eq(vsm_checkpoint_parent(list[1]), "c1");
	ck_assert(vsm_checkpoint_is_current(list[1]));
	ck_assert_uint_eq(vsm_checkpoint_state_size(list[0]), s1.size);
	ck_assert_uint_eq(vsm_checkpoint_layer_count(list[0]), 2);
	for (i = 0; i < n; i++) {
		ck_assert_uint_gt(vsm_checkpoint_layer_size(list[i], 1), 0);
		ck_assert_int_eq(strlen(vsm_checkpoint_layer_cid(list[i], 0)), VSM_UUID_STRLEN);
	}
	vsm_checkpoint_list_free(list, n);
	/* The blob read back to an fd, then damaged on disk: refused. */
	{
		char *out = path_in(refdir, "out"), *cmd = NULL;
		int ofd = open(out, O_RDWR | O_CREAT | O_TRUNC, 0644);

		ck_vsm(vsm_checkpoint_state_read(c, "c1", ofd, NULL, NULL));
		close(ofd);
		{
			char *want = path_in(refdir, "want");
			int wfd = open(want, O_RDWR | O_CREAT | O_TRUNC, 0644);

			ck_assert_int_eq(write(wfd, s1.data, s1.size), (ssize_t)s1.size);
			close(wfd);
			ck_assert_int_eq(sh("cmp '%s' '%s'", want, out), 0);
			free(want);
		}
		{
			blob back2 = blob_make(s1.size, 0);

			ck_vsm(vsm_checkpoint_state_read(c, "c1", -1, blob_write, &back2));
			ck_assert(memcmp(back2.data, s1.data, s1.size) == 0);
			free(back2.data);
		}
		ck_assert(asprintf(&cmd, "for g in '%s'/*-state.*.raw; do "
				   "printf '\\001' | dd of=\"$g\" bs=1 seek=1000 conv=notrunc status=none; "
				   "done", dsdir) > 0);
		ck_assert_int_eq(sh("%s", cmd), 0);
		free(cmd);
		ofd = open(out, O_RDWR | O_TRUNC);
		ck_vsm_refused(vsm_checkpoint_state_read(c, "c1", ofd, NULL, NULL), VSM_ECORRUPT,
			       "checksum");
		close(ofd);
		free(out);
	}
	ck_vsm_refused(vsm_checkpoint_create(NULL, c, "c1", NULL), VSM_EEXISTS, "already exists");
	ck_vsm_refused(vsm_checkpoint_revert(c, "nope", NULL), VSM_ENOTFOUND, "nope");
	all_clean();
	/* Files: 2 tops, 2 x 2 frozen layers, 2 blobs, the state area. */
	ck_assert_int_eq(tu_count_files(dsdir), 9);
	vsm_container_free(c);
	free(s1.data);
	free(s2.data);
	free(p1);
	free(p2);
	free(sf);
}
END_TEST

START_TEST(deployed_refused)
{
	vsm_container *c = make("vm", 1);
	char *p = ref_path("cur", 0);

	ck_vsm(vsm_host_add(ctx, "h1", NULL));
	ck_vsm(vsm_host_link(ctx, "h1", "ds1", 0));
	ref_init("cur", 1);
	ck_vsm(vsm_checkpoint_create(NULL, c, "c1", NULL));
	ck_vsm(vsm_attach(c, "h1", 0));
	ck_vsm(vsm_device_deploy(NULL, c, "d0", NULL));
	ck_vsm_refused(vsm_checkpoint_create(NULL, c, "c2", NULL), VSM_EBUSY, "deployed");
	ck_vsm_refused(vsm_checkpoint_revert(c, "c1", NULL), VSM_EBUSY, "deployed");
	{
		vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
		const vsm_locator *loc;

		ro.flags = VSM_CHECKPOINT_STOPPED;
		scribble(c, 0, p, 9);
		ck_vsm(vsm_checkpoint_revert(c, "c1", &ro));
		/* Deployed again, on the new top, with its chain in the XML. */
		loc = vsm_device_locator(vsm_container_device(c, 0));
		ck_assert_ptr_nonnull(loc);
		ck_assert_ptr_nonnull(strstr(vsm_locator_path(loc),
					     vsm_device_key(vsm_container_device(c, 0))));
		ck_assert_ptr_nonnull(strstr(vsm_locator_disk_xml(loc), "backingStore"));
	}
	ref_init("c1", 1);
	same_as(c, "c1");
	{
		vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
		int files;

		o.flags = VSM_CHECKPOINT_STOPPED;
		ck_vsm(vsm_checkpoint_create(NULL, c, "c2", &o));
		ref_copy("c1", "cur", 1);
		scribble(c, 0, p, 10);
		/* A merge into the running disk waits; the checkpoint goes. */
		files = tu_count_files(dsdir);
		ck_vsm(vsm_checkpoint_delete(c, "c2", 0));
		ck_assert_int_eq(tu_count_files(dsdir), files);
		same_as(c, "cur");
		/* The VM stopped: everything collapses into one layer. */
		ck_vsm(vsm_checkpoint_delete(c, "c1", VSM_CHECKPOINT_STOPPED));
		ck_assert_int_eq(tu_count_files(dsdir), 2);
		same_as(c, "cur");
		ck_assert_ptr_nonnull(vsm_device_locator(vsm_container_device(c, 0)));
		ck_assert_ptr_nonnull(strstr(vsm_locator_path(vsm_device_locator(
			vsm_container_device(c, 0))), vsm_device_key(vsm_container_device(c, 0))));
		all_clean();
	}
	vsm_container_free(c);
	free(p);
}
END_TEST

/*
 * The delete scenario: a tree of depth 5 with a branch and two linked
 * clones, each point's expected content kept as reference files.
 *
 *   c1 - c2 - c3 - c4 - c5 - (current)
 *         \         \-- clone "k3" (from c3)
 *          c6 - (branch made after reverting to c2; then back to c5)
 *   clone "k5" from c5
 */
static const char *const tree_names[] = { "c1", "c2", "c3", "c4", "c5", "c6" };

static void build_tree(vsm_container **out, vsm_container **k3, vsm_container **k5,
		       blob *blobs)
{
	vsm_container *c = make("vm", 2);
	char *p[2] = { ref_path("cur", 0), ref_path("cur", 1) };
	size_t i;

	ref_init("cur", 2);
	for (i = 0; i < 5; i++) {
		scribble(c, 0, p[0], (unsigned)(i * 2 + 1));
		scribble(c, 1, p[1], (unsigned)(i * 2 + 2));
		ref_copy("cur", tree_names[i], 2);
		blobs[i] = blob_make(1000 + i * 4096, (unsigned)i);
		ckpt(c, tree_names[i], &blobs[i]);
	}
	scribble(c, 0, p[0], 40);
	ref_copy("cur", "top", 2);
	ck_vsm(vsm_checkpoint_clone(k3, c, "c3", "k3", 0));
	ck_vsm(vsm_checkpoint_clone(k5, c, "c5", "k5", 0));
	same_as(*k3, "c3");
	same_as(*k5, "c5");
	/* A branch at c2. */
	ck_vsm(vsm_checkpoint_revert(c, "c2", NULL));
	ref_copy("c2", "cur", 2);
	scribble(c, 1, p[1], 50);
	ref_copy("cur", "c6", 2);
	blobs[5] = blob_make(5, 6);
	ckpt(c, "c6", &blobs[5]);
	scribble(c, 0, p[0], 51);
	ref_copy("cur", "top", 2);
	*out = c;
	free(p[0]);
	free(p[1]);
}

/* Everything that remains reads what it read before. */
static void verify_tree(vsm_container *c, vsm_container *k3, vsm_container *k5,
			blob *blobs, const char *deleted)
{
	size_t i;

	all_clean();
	if (k3)
		same_as(k3, "c3");
	if (k5)
		same_as(k5, "c5");
	same_as(c, "top");
	for (i = 0; i < 6; i++) {
		vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
		blob back;

		if (deleted && !strcmp(deleted, tree_names[i]))
			continue;
		back = blob_make(blobs[i].size, 0);
		ro.state_write = blob_write;
		ro.state_payload = &back;
		ck_vsm(vsm_checkpoint_revert(c, tree_names[i], &ro));
		ck_assert(memcmp(back.data, blobs[i].data, blobs[i].size) == 0);
		free(back.data);
		same_as(c, tree_names[i]);
	}
	all_clean();
}

static void delete_at(const char *name)
{
	vsm_container *c, *k3, *k5;
	vsm_checkpoint **list = NULL;
	blob blobs[6];
	size_t i, n;

	build_tree(&c, &k3, &k5, blobs);
	ck_vsm(vsm_checkpoint_delete(c, name, 0));
	ck_vsm(vsm_checkpoint_list(&list, &n, c));
	ck_assert_uint_eq(n, 5);
	for (i = 0; i < n; i++) {
		ck_assert_str_ne(vsm_checkpoint_name(list[i]), name);
		if (!strcmp(name, "c2") && !strcmp(vsm_checkpoint_name(list[i]), "c6"))
			ck_assert_str_eq(vsm_checkpoint_parent(list[i]), "c1");
	}
	vsm_checkpoint_list_free(list, n);
	verify_tree(c, k3, k5, blobs, name);
	/* The clones outlive their source. */
	ck_vsm(vsm_container_destroy(c, 0));
	same_as(k3, "c3");
	same_as(k5, "c5");
	all_clean();
	ck_vsm(vsm_container_destroy(k3, 0));
	same_as(k5, "c5");
	ck_vsm(vsm_container_destroy(k5, 0));
	ck_assert_int_eq(tu_count_files(dsdir), 0);
	vsm_container_free(c);
	vsm_container_free(k3);
	vsm_container_free(k5);
	for (i = 0; i < 6; i++)
		free(blobs[i].data);
}

START_TEST(delete_first) { delete_at("c1"); }
END_TEST
START_TEST(delete_branch_point) { delete_at("c2"); }
END_TEST
START_TEST(delete_middle) { delete_at("c4"); }
END_TEST
START_TEST(delete_clone_base) { delete_at("c3"); }
END_TEST
START_TEST(delete_last) { delete_at("c5"); }
END_TEST
START_TEST(delete_leaf_branch) { delete_at("c6"); }
END_TEST

START_TEST(delete_all)
{
	vsm_container *c, *k3, *k5;
	blob blobs[6];
	size_t i;
	static const char *order[] = { "c3", "c1", "c5", "c6", "c2", "c4" };

	build_tree(&c, &k3, &k5, blobs);
	for (i = 0; i < 6; i++) {
		ck_vsm(vsm_checkpoint_delete(c, order[i], 0));
		all_clean();
		same_as(c, "top");
		same_as(k3, "c3");
		same_as(k5, "c5");
	}
	/* Only the tops, the clones' layers and the state areas are left. */
	ck_vsm(vsm_container_destroy(k3, 0));
	ck_vsm(vsm_container_destroy(k5, 0));
	same_as(c, "top");
	ck_assert_int_eq(tu_count_files(dsdir), 3);
	vsm_container_free(c);
	vsm_container_free(k3);
	vsm_container_free(k5);
	for (i = 0; i < 6; i++)
		free(blobs[i].data);
}
END_TEST

START_TEST(full_clone)
{
	vsm_container *c = make("vm", 2), *k = NULL;
	char *p0 = ref_path("cur", 0), *p1 = ref_path("cur", 1), *top;

	ref_init("cur", 2);
	scribble(c, 0, p0, 1);
	scribble(c, 1, p1, 2);
	ref_copy("cur", "c1", 2);
	ckpt(c, "c1", NULL);
	scribble(c, 0, p0, 3);
	ck_vsm(vsm_checkpoint_clone(&k, c, "c1", "k", VSM_CLONE_FULL));
	same_as(k, "c1");
	top = top_path(k, 0);
	/* Independent: no backing file. */
	ck_assert_int_eq(sh("qemu-img info '%s' | grep -q 'backing file'", top), 1);
	ck_vsm(vsm_container_destroy(c, 0));
	same_as(k, "c1");
	ck_vsm_refused(vsm_checkpoint_clone(NULL, k, "c1", "x", 0), VSM_ENOTFOUND, "c1");
	vsm_container_free(c);
	vsm_container_free(k);
	free(top);
	free(p0);
	free(p1);
}
END_TEST

/* --- crash tests --- */

static int crash_at, crash_seen;

static void crash_hook(const char *action)
{
	(void)action;
	if (++crash_seen == crash_at)
		_exit(77);
}

/* Run @fn in a child that dies at its @at-th journal step; returns
 * whether it died there (false: it finished first). */
static bool run_and_crash(void (*fn)(void), int at)
{
	pid_t pid;
	int st;

	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		vsm_ctx *child;
		vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

		o.state_dir = state;
		if (vsm_ctx_open(&child, &o) < 0)
			_exit(3);
		ctx = child;
		crash_at = at;
		crash_seen = 0;
		vsm__wf_test_hook = crash_hook;
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st));
	ck_assert_msg(WEXITSTATUS(st) == 77 || WEXITSTATUS(st) == 0, "child exit %d",
		      WEXITSTATUS(st));
	return WEXITSTATUS(st) == 77;
}

/* A new context on the same state directory (what a restarted process
 * does); handles of the old one are looked up again. */
static void reopen(void)
{
	vsm_ctx_free(ctx);
	ctx = tu_ctx(state);
}

static vsm_container *again(vsm_container *old)
{
	vsm_container *c = NULL;
	char name[80];

	snprintf(name, sizeof(name), "%s", vsm_container_name(old));
	vsm_container_free(old);
	ck_vsm(vsm_container_lookup(&c, ctx, "ds1", name));
	return c;
}

static void child_create(void)
{
	vsm_container *c = NULL;
	blob b = blob_make(100000, 3);

	if (vsm_container_lookup(&c, ctx, "ds1", "vm") < 0)
		_exit(4);
	ckpt(c, "c2", &b);
	_exit(0);
}

START_TEST(crash_create)
{
	int at;

	srand(5);
	for (at = 1; at < 26; at++) {
		vsm_container *c = make("vm", 2);
		char *p = ref_path("cur", 0);
		vsm_checkpoint **list = NULL;
		size_t n;
		bool crashed = true;

		ref_init("cur", 2);
		scribble(c, 0, p, 1);
		ckpt(c, "c1", NULL);
		ref_copy("cur", "c1", 2);
		if (at <= 20) {
			crashed = run_and_crash(child_create, at);
		} else {
			/* SIGKILL at a random moment instead of a journal step. */
			pid_t pid;
			int st;

			fflush(NULL);
			if ((pid = fork()) == 0) {
				vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

				o.state_dir = state;
				if (vsm_ctx_open(&ctx, &o) < 0)
					_exit(3);
				child_create();
			}
			usleep(200 + (unsigned)(rand() % 15000));
			kill(pid, SIGKILL);
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		}
		reopen();
		c = again(c);
		ck_vsm(vsm_checkpoint_list(&list, &n, c));
		/* All or nothing, and nothing left over. */
		ck_assert(n == 1 || n == 2);
		ck_assert_int_eq(tu_count_files(dsdir), n == 1 ? 5 : 8);
		vsm_checkpoint_list_free(list, n);
		same_as(c, "c1");
		all_clean();
		ck_vsm(vsm_container_destroy(c, 0));
		ck_assert_int_eq(tu_count_files(dsdir), 0);
		vsm_container_free(c);
		free(p);
		if (!crashed && at <= 20)
			at = 20; /* every step was hit: go on with random kills */
	}
}
END_TEST

static const char *crash_delete_name;

static void child_delete(void)
{
	vsm_container *c = NULL;

	if (vsm_container_lookup(&c, ctx, "ds1", "vm") < 0)
		_exit(4);
	if (vsm_checkpoint_delete(c, crash_delete_name, 0) < 0)
		_exit(5);
	_exit(0);
}

/* Kill a delete between its steps and, with SIGKILL, in the middle of
 * the copy; the next open finishes the merge. */
static void crash_delete_case(const char *name, int at, unsigned int kill_us)
{
	vsm_container *c, *k3, *k5;
	blob blobs[6];
	size_t i;

	build_tree(&c, &k3, &k5, blobs);
	crash_delete_name = name;
	if (kill_us) {
		pid_t pid;
		int st;

		fflush(NULL);
		if ((pid = fork()) == 0) {
			vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

			o.state_dir = state;
			if (vsm_ctx_open(&ctx, &o) < 0)
				_exit(3);
			child_delete();
		}
		usleep(kill_us);
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	} else {
		run_and_crash(child_delete, at);
	}
	reopen();
	c = again(c);
	k3 = again(k3);
	k5 = again(k5);
	{
		vsm_checkpoint *cp = NULL;
		int rc = vsm_checkpoint_lookup(&cp, c, name);

		/* Either not deleted yet (the record write never happened) or
		 * gone; a second delete finishes the job either way. */
		if (rc == 0)
			ck_vsm(vsm_checkpoint_delete(c, name, 0));
		vsm_checkpoint_free(cp);
	}
	verify_tree(c, k3, k5, blobs, name);
	vsm_container_free(c);
	vsm_container_free(k3);
	vsm_container_free(k5);
	for (i = 0; i < 6; i++)
		free(blobs[i].data);
}

START_TEST(crash_delete)
{
	static const char *names[] = { "c1", "c4", "c5" };
	int at;

	for (at = 1; at <= 4; at++) {
		crash_delete_case(names[at % 3], at, 0);
		teardown();
		setup();
	}
	/* SIGKILL at random points of the merge itself. */
	srand(7);
	for (at = 0; at < 3; at++) {
		crash_delete_case(names[at], 0, 1000 + (unsigned)(rand() % 40000));
		teardown();
		setup();
	}
}
END_TEST


/* A golden image (vsm_device_spec.base) is read by checkpoints and
 * merges but never changed or deleted. */
START_TEST(golden_base)
{
	vsm_device_spec d = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *ptrs[1] = { &d };
	vsm_container_opts o = VSM_CONTAINER_OPTS_INIT;
	vsm_container *c = NULL, *c2 = NULL;
	char *gold = path_in(dsdir, "golden.qcow2"), *p = ref_path("cur", 0);
	vsm_image_create_opts io = VSM_IMAGE_CREATE_OPTS_INIT;
	vsm_image *img = NULL;
	uint8_t buf[65536];

	io.size = DEV_SIZE;
	ck_vsm(vsm_image_create(gold, &io, 0));
	memset(buf, 0x5a, sizeof(buf));
	ck_vsm(vsm_image_open(&img, gold, NULL));
	ck_vsm(vsm_image_write(img, buf, sizeof(buf), 0, 0));
	ck_vsm(vsm_image_close(img));
	ck_assert_int_eq(sh("md5sum '%s' > '%s/golden.md5'", gold, refdir), 0);
	ref_init("cur", 1);
	{
		int fd = open(p, O_RDWR);

		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
		close(fd);
	}
	d.name = "d0";
	d.format = VSM_FORMAT_QCOW2;
	d.base = "golden.qcow2";
	o.devices = ptrs;
	o.n_devices = 1;
	o.flags = VSM_CONTAINER_CREATE_THIN;
	ck_vsm(vsm_container_create(&c, ctx, "ds1", "vm", &o));
	ck_vsm(vsm_container_create(&c2, ctx, "ds1", "vm2", &o));
	scribble(c, 0, p, 1);
	ref_copy("cur", "c1", 1);
	ckpt(c, "c1", NULL);
	scribble(c, 0, p, 2);
	ckpt(c, "c2", NULL);
	scribble(c, 0, p, 3);
	ref_copy("cur", "top", 1);
	ck_vsm(vsm_checkpoint_delete(c, "c1", 0));
	ck_vsm(vsm_checkpoint_delete(c, "c2", 0));
	same_as(c, "top");
	all_clean();
	ck_vsm(vsm_container_destroy(c, 0));
	ck_assert_int_eq(sh("cd '%s' && md5sum -c '%s/golden.md5'", dsdir, refdir), 0);
	ck_assert(tu_exists(gold));
	ref_init("g", 1);
	{
		char *g = ref_path("g", 0);
		int fd = open(g, O_RDWR);

		ck_assert_int_eq(pwrite(fd, buf, sizeof(buf), 0), (ssize_t)sizeof(buf));
		close(fd);
		free(g);
	}
	same_as(c2, "g");
	vsm_container_free(c);
	vsm_container_free(c2);
	free(gold);
	free(p);
}
END_TEST

/* Failures in the middle (not crashes): every call undoes its work. */
START_TEST(failures_roll_back)
{
	vsm_container *c = NULL, *x = NULL;
	char *fdir = tu_dir("fds"), *furi = NULL, *file = path_in(refdir, "f.bundle");
	vsm_checkpoint **list = NULL;
	blob b = blob_make(300000, 3);
	size_t n;
	int files, k;

	memset(&fault, 0, sizeof(fault));
	ck_vsm(fault_register(ctx));
	ck_assert(asprintf(&furi, "fault://%s", fdir) > 0);
	ck_vsm(vsm_datastore_add(ctx, "fds", furi, 0));
	ck_vsm(tu_create(&c, ctx, "fds", "vm", 2, DEV_SIZE));
	ck_vsm(vsm_checkpoint_create(NULL, c, "c1", NULL));
	files = tu_count_files(fdir);
	/* The blob device, then each overlay: fail each in turn. */
	for (k = 1; k <= 3; k++) {
		vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;

		b.pos = 0;
		o.state_read = blob_read;
		o.state_payload = &b;
		o.state_size = b.size;
		fault.create_fail_at = fault.creates + k;
		fault.create_fail_code = VSM_ENOSPC;
		ck_vsm_refused(vsm_checkpoint_create(NULL, c, "c2", &o), VSM_ENOSPC, "injected");
		ck_assert_int_eq(tu_count_files(fdir), files);
		ck_vsm(vsm_checkpoint_list(&list, &n, c));
		ck_assert_uint_eq(n, 1);
		vsm_checkpoint_list_free(list, n);
	}
	fault.create_fail_at = 0;
	/* A write failing while the blob streams in. */
	b.pos = 0;
	fault.write_fail_at = fault.writes + 3;
	{
		vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;

		o.state_read = blob_read;
		o.state_payload = &b;
		o.state_size = b.size;
		ck_assert_int_lt(vsm_checkpoint_create(NULL, c, "c2", &o), 0);
	}
	fault.write_fail_at = 0;
	ck_assert_int_eq(tu_count_files(fdir), files);
	/* A revert whose second overlay cannot be made changes nothing. */
	fault.create_fail_at = fault.creates + 2;
	fault.create_fail_code = VSM_EIO;
	ck_vsm_refused(vsm_checkpoint_revert(c, "c1", NULL), VSM_EIO, "injected");
	ck_assert_int_eq(tu_count_files(fdir), files);
	fault.create_fail_at = 0;
	/* An import whose writes fail leaves nothing; the second try works. */
	ck_vsm(vsm_bundle_export(c, NULL, file, NULL));
	fault.write_fail_at = fault.writes + 2;
	ck_assert_int_lt(vsm_bundle_import(&x, ctx, file, "fds", "copy", NULL), 0);
	ck_assert_int_eq(tu_count_files(fdir), files);
	fault.write_fail_at = 0;
	ck_vsm(vsm_bundle_import(&x, ctx, file, "fds", "copy", NULL));
	vsm_container_free(x);
	vsm_container_free(c);
	free(b.data);
	free(fdir);
	free(furi);
	free(file);
}
END_TEST

/* Blobs of unknown size: a pipe read to its end (growing the device
 * past its first 64 MiB), a callback that says when it is done. */
START_TEST(state_unknown_size)
{
	vsm_container *c = make("vm", 1);
	blob big = blob_make((70u << 20) + 4321, 7), small = blob_make(5000, 8), back;
	vsm_checkpoint_opts o = VSM_CHECKPOINT_OPTS_INIT;
	vsm_checkpoint *cp = NULL;
	int fds[2];
	pid_t pid;

	ck_assert_int_eq(pipe(fds), 0);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		size_t off = 0;

		close(fds[0]);
		while (off < big.size) {
			ssize_t w = write(fds[1], big.data + off, big.size - off);

			if (w <= 0)
				_exit(1);
			off += (size_t)w;
		}
		_exit(0);
	}
	close(fds[1]);
	o.state_fd = fds[0];
	ck_vsm(vsm_checkpoint_create(&cp, c, "c1", &o));
	close(fds[0]);
	waitpid(pid, NULL, 0);
	ck_assert_uint_eq(vsm_checkpoint_state_size(cp), big.size);
	vsm_checkpoint_free(cp);
	back = blob_make(big.size, 0);
	ck_vsm(vsm_checkpoint_state_read(c, "c1", -1, blob_write, &back));
	ck_assert(memcmp(back.data, big.data, big.size) == 0);
	free(back.data);

	o.state_fd = -1;
	o.state_read = blob_read;
	o.state_payload = &small;
	ck_vsm(vsm_checkpoint_create(&cp, c, "c2", &o));
	ck_assert_uint_eq(vsm_checkpoint_state_size(cp), small.size);
	vsm_checkpoint_free(cp);
	back = blob_make(small.size, 0);
	ck_vsm(vsm_checkpoint_state_read(c, "c2", -1, blob_write, &back));
	ck_assert(memcmp(back.data, small.data, small.size) == 0);
	free(back.data);
	vsm_container_free(c);
	free(big.data);
	free(small.data);
}
END_TEST

/* --- record fields --- */

#define REC_HEAD "{\"version\":1,\"name\":\"vm\",\"uuid\":\"0fb88dbb-a382-403b-a3b9-334603fd0056\"," \
	"\"ctime\":1,\"state_key\":null,\"state_size\":0,\"devices\":[{\"name\":\"d0\",\"key\":\"top\"," \
	"\"size\":4096,\"format\":\"qcow2\",\"chain\":[{\"key\":\"L1\",\"format\":\"raw\"}]}]," \
	"\"attached_host\":null,\"deployments\":[],\"destroying\":false,\"lease_version\":0"
#define LAYER_OK "\"layers\":[{\"key\":\"L1\",\"format\":\"raw\",\"backing\":null," \
	"\"backing_format\":null,\"cid\":\"d306a7e3-1055-415b-ba24-c4f33cb815a2\",\"managed\":true}]"
#define CKPT(name, parent, key) "{\"name\":\"" name "\",\"parent\":" parent ",\"ctime\":1," \
	"\"state_key\":null,\"state_size\":0,\"state_sum\":\"0000000000000000\",\"layers\":[" \
	"{\"device\":\"d0\",\"key\":\"" key "\"}]}"

static int decode(const char *json)
{
	vsm_record *r = NULL;
	int rc = vsm_record_decode(&r, json, strlen(json), "test");

	vsm_record_free(r);
	return rc;
}

START_TEST(record_fields)
{
	vsm_record *r = NULL;
	char *enc = NULL;
	const char *good = REC_HEAD "," LAYER_OK ",\"current_checkpoint\":\"c1\",\"checkpoints\":["
			   CKPT("c1", "null", "L1") "]}";

	/* A record from before checkpoints reads, and is written back the same way. */
	ck_vsm(vsm_record_decode(&r, REC_HEAD "}", strlen(REC_HEAD "}"), "old"));
	ck_assert_uint_eq(r->n_ckpts, 0);
	ck_vsm(vsm_record_encode(&enc, r));
	ck_assert_ptr_null(strstr(enc, "checkpoints"));
	free(enc);
	vsm_record_free(r);
	r = NULL;
	ck_vsm(vsm_record_decode(&r, good, strlen(good), "good"));
	ck_assert_uint_eq(r->n_ckpts, 1);
	ck_assert_str_eq(r->ckpt_current, "c1");
	ck_vsm(vsm_record_encode(&enc, r));
	ck_assert_ptr_nonnull(strstr(enc, "\"current_checkpoint\":\"c1\""));
	free(enc);
	vsm_record_free(r);
	/* Each inconsistency is refused. */
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK ",\"current_checkpoint\":null,\"checkpoints\":["
				CKPT("c1", "\"nope\"", "L1") "]}"), -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK ",\"current_checkpoint\":null,\"checkpoints\":["
				CKPT("c1", "\"c2\"", "L1") "," CKPT("c2", "\"c1\"", "L1") "]}"),
			 -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK ",\"current_checkpoint\":null,\"checkpoints\":["
				CKPT("c1", "null", "L9") "]}"), -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK ",\"current_checkpoint\":\"c3\",\"checkpoints\":["
				CKPT("c1", "null", "L1") "]}"), -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK ",\"current_checkpoint\":null,\"checkpoints\":["
				CKPT("c1", "null", "L1") "," CKPT("c1", "null", "L1") "]}"),
			 -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD ",\"layers\":[{\"key\":\"L1\",\"format\":\"raw\",\"backing\":"
				"null,\"backing_format\":null,\"cid\":null,\"managed\":true}],"
				"\"current_checkpoint\":null,\"checkpoints\":[]}"), -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD ",\"layers\":[{\"key\":\"L1\",\"format\":\"raw\",\"backing\":"
				"\"L0\",\"backing_format\":\"raw\",\"cid\":null,\"managed\":false}],"
				"\"current_checkpoint\":null,\"checkpoints\":[]}"), -VSM_ECORRUPT);
	ck_assert_int_eq(decode(REC_HEAD "," LAYER_OK "}"), -VSM_ECORRUPT);
}
END_TEST

/* --- bundles --- */

static int progress_calls;
static uint64_t progress_last;

static int on_progress(uint64_t done, uint64_t total, void *payload)
{
	(void)payload;
	ck_assert_uint_le(done, total);
	ck_assert_uint_ge(done, progress_last);
	progress_last = done;
	progress_calls++;
	return 0;
}

/* Every checkpoint of @c reads like its reference and returns its blob. */
static void tree_same(vsm_container *c, blob *blobs, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
		blob back = blob_make(blobs[i].size, 0);

		ro.state_write = blob_write;
		ro.state_payload = &back;
		ck_vsm(vsm_checkpoint_revert(c, tree_names[i], &ro));
		ck_assert(memcmp(back.data, blobs[i].data, blobs[i].size) == 0);
		free(back.data);
		same_as(c, tree_names[i]);
	}
}

START_TEST(export_import)
{
	vsm_container *c = make("vm", 2), *copy = NULL;
	char *p0 = ref_path("cur", 0), *p1 = ref_path("cur", 1), *file = path_in(refdir, "vm.bundle");
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	vsm_checkpoint **list = NULL;
	blob blobs[2] = { blob_make(100000, 1), blob_make(3, 2) };
	size_t n;

	add_ds2();
	ref_init("cur", 2);
	scribble(c, 0, p0, 1);
	scribble(c, 1, p1, 2);
	ref_copy("cur", "c1", 2);
	ckpt(c, "c1", &blobs[0]);
	scribble(c, 0, p0, 3);
	ref_copy("cur", "c2", 2);
	ckpt(c, "c2", &blobs[1]);
	scribble(c, 1, p1, 4);
	ref_copy("cur", "top", 2);
	bo.progress = on_progress;
	bo.stats = &st;
	progress_calls = 0;
	progress_last = 0;
	ck_vsm(vsm_bundle_export(c, NULL, file, &bo));
	ck_assert_int_gt(progress_calls, 0);
	ck_assert_uint_eq(st.layers, 6);
	ck_vsm_refused(vsm_bundle_export(c, NULL, file, NULL), VSM_EEXISTS, "vm.bundle");
	progress_last = 0;
	ck_vsm(vsm_bundle_import(&copy, ctx, file, "ds2", "copy", &bo));
	ck_assert_uint_eq(st.layers_skipped, 0);
	ck_assert_uint_gt(st.bytes_written, 0);
	same_as(copy, "top");
	ck_vsm(vsm_checkpoint_list(&list, &n, copy));
	ck_assert_uint_eq(n, 2);
	ck_assert_str_eq(vsm_checkpoint_parent(list[1]), "c1");
	ck_assert(vsm_checkpoint_is_current(list[1]));
	vsm_checkpoint_list_free(list, n);
	tree_same(copy, blobs, 2);
	all_clean();
	/* The same name twice is refused, and changes nothing. */
	n = (size_t)tu_count_files(ds2dir);
	ck_vsm_refused(vsm_bundle_import(NULL, ctx, file, "ds2", "copy", NULL), VSM_EEXISTS,
		       "copy");
	ck_assert_int_eq(tu_count_files(ds2dir), (int)n);
	vsm_container_free(copy);
	vsm_container_free(c);
	free(blobs[0].data);
	free(blobs[1].data);
	free(p0);
	free(p1);
	free(file);
}
END_TEST

START_TEST(import_skips_base)
{
	vsm_container *c = make("vm", 2), *a = NULL, *b = NULL, *full = NULL;
	char *p0 = ref_path("cur", 0), *p1 = ref_path("cur", 1);
	char *f1 = path_in(refdir, "c1.bundle"), *f2 = path_in(refdir, "c2.bundle");
	char *d3 = tu_dir("ds3"), *u3 = tu_uri(d3);
	vsm_bundle_opts bo = VSM_BUNDLE_OPTS_INIT;
	vsm_bundle_stats st;
	uint64_t before, grew_dedup, grew_full;
	blob blobs[2] = { blob_make(5000, 1), blob_make(7000, 2) };

	add_ds2();
	ds3dir = d3;
	ck_vsm(vsm_datastore_add(ctx, "ds3", u3, 0));
	ref_init("cur", 2);
	/* A big base, a small delta. */
	scribble(c, 0, p0, 1);
	scribble(c, 0, p0, 2);
	scribble(c, 1, p1, 3);
	scribble(c, 1, p1, 4);
	ref_copy("cur", "c1", 2);
	ckpt(c, "c1", &blobs[0]);
	ck_vsm(vsm_bundle_export(c, "c1", f1, NULL));
	ck_vsm(vsm_bundle_import(&a, ctx, f1, "ds2", "base", NULL));
	same_as(a, "c1");
	scribble(c, 1, p1, 5);
	ref_copy("cur", "c2", 2);
	ckpt(c, "c2", &blobs[1]);
	ck_vsm(vsm_bundle_export(c, "c2", f2, NULL));
	bo.stats = &st;
	before = du(ds2dir);
	ck_vsm(vsm_bundle_import(&b, ctx, f2, "ds2", "v2", &bo));
	grew_dedup = du(ds2dir) - before;
	/* Both c1 layers were there already. */
	ck_assert_uint_eq(st.layers, 4);
	ck_assert_uint_eq(st.layers_skipped, 2);
	{
		uint64_t dedup_bytes = st.bytes_written;

		before = du(ds3dir);
		ck_vsm(vsm_bundle_import(&full, ctx, f2, "ds3", "v2", &bo));
		grew_full = du(ds3dir) - before;
		ck_assert_uint_eq(st.layers_skipped, 0);
		ck_assert_msg(dedup_bytes < st.bytes_written / 2, "dedup import wrote %llu bytes, "
			      "full import %llu", (unsigned long long)dedup_bytes,
			      (unsigned long long)st.bytes_written);
		ck_assert_msg(grew_dedup < grew_full, "dedup import grew the datastore by %llu "
			      "bytes, full import by %llu", (unsigned long long)grew_dedup,
			      (unsigned long long)grew_full);
	}
	same_as(b, "c2");
	same_as(full, "c2");
	/* The shared base outlives the container it came with. */
	ck_vsm(vsm_container_destroy(a, 0));
	same_as(b, "c2");
	all_clean();
	all_clean_in(ds3dir);
	vsm_container_free(a);
	vsm_container_free(b);
	vsm_container_free(full);
	vsm_container_free(c);
	free(blobs[0].data);
	free(blobs[1].data);
	free(p0);
	free(p1);
	free(f1);
	free(f2);
	free(d3);
	free(u3);
}
END_TEST

static void damage(const char *from, const char *to, long at, int truncate_to_at)
{
	ck_assert_int_eq(sh("cp '%s' '%s'", from, to), 0);
	if (truncate_to_at)
		ck_assert_int_eq(truncate(to, at), 0);
	else
		ck_assert_int_eq(sh("printf '\\377' | dd of='%s' bs=1 seek=%ld conv=notrunc status=none", to, at),
				 0);
}

START_TEST(damaged_bundles)
{
	vsm_container *c = make("vm", 2), *x = NULL;
	char *p0 = ref_path("cur", 0), *file = path_in(refdir, "vm.bundle"),
	     *bad_file = path_in(refdir, "bad.bundle");
	blob b = blob_make(20000, 9);
	struct stat st;
	long size, cuts[] = { 10, 63, 64, 200, -1, -24, -1000 };
	size_t i;

	add_ds2();
	ref_init("cur", 2);
	scribble(c, 0, p0, 1);
	ckpt(c, "c1", &b);
	ck_vsm(vsm_bundle_export(c, NULL, file, NULL));
	ck_assert_int_eq(stat(file, &st), 0);
	size = (long)st.st_size;
	for (i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		long at = cuts[i] < 0 ? size + cuts[i] : cuts[i];

		unlink(bad_file);
		damage(file, bad_file, at, 1);
		ck_assert_int_lt(vsm_bundle_import(&x, ctx, bad_file, "ds2", NULL, NULL), 0);
		ck_assert_msg(vsm_error_last()->code == VSM_ECORRUPT ||
			      vsm_error_last()->code == VSM_EINVAL, "truncated at %ld: %s", at,
			      tu_msg());
		ck_assert_int_eq(tu_count_files(ds2dir), 0);
	}
	/* One byte altered: in the header, the manifest, a layer, a blob, the trailer. */
	{
		long spots[] = { 20, 100, size / 3, size / 2, size - 30000, size - 100, size - 5 };

		for (i = 0; i < sizeof(spots) / sizeof(spots[0]); i++) {
			unlink(bad_file);
			damage(file, bad_file, spots[i], 0);
			ck_vsm_refused(vsm_bundle_import(&x, ctx, bad_file, "ds2", NULL, NULL),
				       VSM_ECORRUPT, "bad.bundle");
			ck_assert_int_eq(tu_count_files(ds2dir), 0);
		}
	}
	{
		int fd = open(bad_file, O_WRONLY | O_TRUNC);

		ck_assert_int_eq(write(fd, "hello world, this is not a bundle at all, really no",
				       51), 51);
		close(fd);
		ck_vsm_refused(vsm_bundle_import(&x, ctx, bad_file, "ds2", NULL, NULL), VSM_EINVAL,
			       "not a libvsm bundle");
	}
	/* The intact file still imports. */
	ck_vsm(vsm_bundle_import(&x, ctx, file, "ds2", NULL, NULL));
	vsm_container_free(x);
	vsm_container_free(c);
	free(b.data);
	free(p0);
	free(file);
	free(bad_file);
}
END_TEST

static char *crash_bundle;

static void child_import(void)
{
	if (vsm_bundle_import(NULL, ctx, crash_bundle, "ds2", "copy", NULL) < 0)
		_exit(5);
	_exit(0);
}

START_TEST(crash_import)
{
	vsm_container *c = make("vm", 2);
	char *p0 = ref_path("cur", 0), *p1 = ref_path("cur", 1);
	blob b = blob_make(300000, 4);
	int at;

	add_ds2();
	crash_bundle = path_in(refdir, "vm.bundle");
	ref_init("cur", 2);
	scribble(c, 0, p0, 1);
	ref_copy("cur", "c1", 2);
	ckpt(c, "c1", &b);
	scribble(c, 1, p1, 2);
	ref_copy("cur", "top", 2);
	ck_vsm(vsm_bundle_export(c, NULL, crash_bundle, NULL));
	srand(11);
	for (at = 1; at < 40; at++) {
		vsm_container *copy = NULL;
		bool crashed;
		int rc;

		if (at < 30) {
			crashed = run_and_crash(child_import, at);
		} else {
			pid_t pid;
			int st;

			fflush(NULL);
			if ((pid = fork()) == 0) {
				vsm_ctx_opts o = VSM_CTX_OPTS_INIT;

				o.state_dir = state;
				if (vsm_ctx_open(&ctx, &o) < 0)
					_exit(3);
				child_import();
			}
			usleep(500 + (unsigned)(rand() % 20000));
			kill(pid, SIGKILL);
			ck_assert_int_eq(waitpid(pid, &st, 0), pid);
			crashed = WIFSIGNALED(st);
		}
		reopen();
		rc = vsm_container_lookup(&copy, ctx, "ds2", "copy");
		if (rc == 0) {
			same_as(copy, "top");
			ck_vsm(vsm_container_destroy(copy, 0));
			vsm_container_free(copy);
		}
		/* Either whole or nothing at all. */
		ck_assert_int_eq(tu_count_files(ds2dir), 0);
		if (!crashed && at < 30)
			at = 29; /* steps exhausted: go on with random kills */
	}
	vsm_container_free(c);
	free(b.data);
	free(p0);
	free(p1);
	free(crash_bundle);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *t = tcase_create("basic");
	TCase *d = tcase_create("delete");
	TCase *k = tcase_create("crash");

	tcase_add_unchecked_fixture(t, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, record_fields);
	tcase_add_test(t, revert_cycles);
	tcase_add_test(t, deployed_refused);
	tcase_add_test(t, full_clone);
	tcase_add_test(t, golden_base);
	tcase_add_test(t, state_unknown_size);
	tcase_add_test(t, failures_roll_back);
	tcase_add_test(t, export_import);
	tcase_add_test(t, import_skips_base);
	tcase_add_test(t, damaged_bundles);
	suite_add_tcase(s, t);

	tcase_add_unchecked_fixture(d, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(d, setup, teardown);
	tcase_set_timeout(d, 120);
	tcase_add_test(d, delete_first);
	tcase_add_test(d, delete_branch_point);
	tcase_add_test(d, delete_middle);
	tcase_add_test(d, delete_clone_base);
	tcase_add_test(d, delete_last);
	tcase_add_test(d, delete_leaf_branch);
	tcase_add_test(d, delete_all);
	suite_add_tcase(s, d);

	tcase_add_unchecked_fixture(k, tu_root_setup, tu_root_teardown);
	tcase_add_checked_fixture(k, setup, teardown);
	tcase_set_timeout(k, 240);
	tcase_add_test(k, crash_create);
	tcase_add_test(k, crash_delete);
	tcase_add_test(k, crash_import);
	suite_add_tcase(s, k);
	return tu_run(s);
}
