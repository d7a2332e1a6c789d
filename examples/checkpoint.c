/*
 * Take a checkpoint of a VM's storage and go back to it: a container
 * with one qcow2 disk on a file datastore, a first write, a checkpoint
 * that also keeps a VM-state blob (what a hypervisor would save of the
 * guest's memory), a second write, then a revert that brings back the
 * first write and hands the blob back. Writes go through the image API,
 * as a tool that prepares a disk offline would do them.
 *
 * Build against an installed libvsm:
 *   cc checkpoint.c $(pkg-config --cflags --libs vsm) -o checkpoint
 * usage: checkpoint STATE_DIR file:///DATASTORE_DIR
 */
#include <stdio.h>
#include <string.h>
#include <vsm/vsm.h>

#define MIB (1ull << 20)

static const char first[] = "written before the checkpoint";
static const char second[] = "written after the checkpoint, dropped by the revert";
static const char vm_state[] = "saved guest memory would go here";

static int die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "checkpoint: %s: %s\n", what, e ? e->message : "?");
	return 1;
}

/* The VM-state blob, handed to the library in one piece. */
static int state_out(void *buf, size_t len, size_t *got, void *payload)
{
	size_t *sent = payload, n = sizeof(vm_state) - *sent;

	if (n > len)
		n = len;
	memcpy(buf, vm_state + *sent, n);
	*sent += n;
	*got = n;
	return 0;
}

/* The blob coming back at the revert. */
typedef struct {
	char buf[64];
	size_t len;
} blob;

static int state_in(const void *buf, size_t len, void *payload)
{
	blob *b = payload;

	if (b->len + len > sizeof(b->buf))
		return -VSM_ENOSPC;
	memcpy(b->buf + b->len, buf, len);
	b->len += len;
	return 0;
}

/* Write @text, zero-padded to a 4 KiB block, at the start of the
 * container's disk, and flush it (a write is durable once flushed). */
static int write_disk(vsm_ctx *ctx, const char *text)
{
	vsm_image_open_opts o = VSM_IMAGE_OPEN_OPTS_INIT;
	static char block[4096];
	vsm_image *img;
	int rc;

	memset(block, 0, sizeof(block));
	snprintf(block, sizeof(block), "%s", text);
	o.flags = VSM_IMAGE_OPEN_RDWR;
	if (vsm_image_open_device(&img, ctx, "ds", "vm1", "root", &o) < 0)
		return -1;
	rc = vsm_image_write(img, block, sizeof(block), 0, 0);
	if (rc == 0)
		rc = vsm_image_flush(img);
	if (vsm_image_close(img) < 0)
		rc = -1;
	return rc;
}

static int read_disk(vsm_ctx *ctx, char *buf, size_t len)
{
	vsm_image *img;
	int rc;

	if (vsm_image_open_device(&img, ctx, "ds", "vm1", "root", NULL) < 0)
		return -1;
	rc = vsm_image_read(img, buf, len, 0);
	vsm_image_close(img);
	return rc;
}

int main(int argc, char **argv)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_device_spec disk = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *disks[] = { &disk };
	vsm_container_opts copts = VSM_CONTAINER_OPTS_INIT;
	vsm_checkpoint_opts cko = VSM_CHECKPOINT_OPTS_INIT;
	vsm_revert_opts ro = VSM_REVERT_OPTS_INIT;
	size_t sent = 0;
	blob back = { { 0 }, 0 };
	char buf[128];
	vsm_ctx *ctx;
	vsm_container *c;

	if (argc != 3) {
		fprintf(stderr, "usage: checkpoint STATE_DIR file:///DATASTORE_DIR\n");
		return 2;
	}
	opts.state_dir = argv[1];
	if (vsm_ctx_open(&ctx, &opts) < 0)
		return die("open");
	if (vsm_datastore_add(ctx, "ds", argv[2], 0) < 0)
		return die("datastore add");

	disk.name = "root";
	disk.size = 64 * MIB;
	disk.format = VSM_FORMAT_QCOW2;
	copts.devices = disks;
	copts.n_devices = 1;
	if (vsm_container_create(&c, ctx, "ds", "vm1", &copts) < 0)
		return die("container create");

	if (write_disk(ctx, first) < 0)
		return die("first write");
	/* The checkpoint freezes the disk's layer and keeps the blob. */
	cko.state_read = state_out;
	cko.state_payload = &sent;
	cko.state_size = sizeof(vm_state);
	if (vsm_checkpoint_create(NULL, c, "clean", &cko) < 0)
		return die("checkpoint create");
	printf("checkpoint 'clean' taken\n");

	if (write_disk(ctx, second) < 0 || read_disk(ctx, buf, sizeof(buf)) < 0)
		return die("second write");
	printf("disk now reads: %s\n", buf);

	/* Back to 'clean': the second write is dropped, the blob returns. */
	ro.state_write = state_in;
	ro.state_payload = &back;
	if (vsm_checkpoint_revert(c, "clean", &ro) < 0)
		return die("revert");
	if (read_disk(ctx, buf, sizeof(buf)) < 0)
		return die("read after revert");
	printf("after revert to 'clean': %s\n", buf);
	printf("VM state handed back: %.*s\n", (int)back.len, back.buf);
	if (strcmp(buf, first) != 0 || back.len != sizeof(vm_state) ||
	    memcmp(back.buf, vm_state, back.len) != 0) {
		fprintf(stderr, "checkpoint: the revert did not bring back the checkpoint\n");
		return 1;
	}

	if (vsm_container_destroy(c, 0) < 0)
		return die("destroy");
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	return 0;
}
