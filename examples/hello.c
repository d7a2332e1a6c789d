/*
 * The smallest libvsm program: create a container on a file datastore,
 * attach it, deploy its disk and print where the hypervisor finds it.
 * Build against an installed libvsm:
 *   cc hello.c $(pkg-config --cflags --libs vsm) -o hello
 */
#include <stdio.h>
#include <vsm/vsm.h>

static int die(void)
{
	fprintf(stderr, "hello: %s\n", vsm_error_last()->message);
	return 1;
}

int main(int argc, char **argv)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_device_spec disk = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *disks[] = { &disk };
	vsm_container_opts copts = VSM_CONTAINER_OPTS_INIT;
	vsm_ctx *ctx;
	vsm_container *c;
	vsm_locator *loc;

	if (argc != 3) {
		fprintf(stderr, "usage: hello STATE_DIR file:///DATASTORE_DIR\n");
		return 2;
	}
	opts.state_dir = argv[1];
	if (vsm_ctx_open(&ctx, &opts) < 0)
		return die();
	if (vsm_datastore_add(ctx, "ds", argv[2], 0) < 0 ||
	    vsm_host_add(ctx, "here", NULL) < 0 ||
	    vsm_host_link(ctx, "here", "ds", 0) < 0)
		return die();

	disk.name = "root";
	disk.size = 1ull << 30;
	copts.devices = disks;
	copts.n_devices = 1;
	if (vsm_container_create(&c, ctx, "ds", "vm1", &copts) < 0 ||
	    vsm_attach(c, "here", 0) < 0 ||
	    vsm_device_deploy(&loc, c, "root", NULL) < 0)
		return die();
	printf("%s\n%s", vsm_locator_uri(loc), vsm_locator_disk_xml(loc));

	vsm_locator_free(loc);
	vsm_container_destroy(c, VSM_CONTAINER_DESTROY_FORCE);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	return 0;
}
