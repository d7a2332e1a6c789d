/*
 * Provision a VM from a golden image and hot-plug its disk into a running
 * libvirt domain: the golden image is copied onto the datastore once,
 * the VM's disk is a qcow2 linked clone of it (no copy of the image's
 * data), the container is attached to the host whose hypervisor runs the
 * domain, and the disk is deployed into the domain as a SCSI disk (the
 * domain needs a SCSI controller; a virtio-blk disk would need a guest
 * that answers the unplug request before it can be undeployed).
 *
 * Run it again with another VM name: the golden image is already on the
 * datastore and is reused. The container stays attached and deployed;
 * `vsmctl undeploy`, `detach` and `container destroy` (or the API's
 * inverses) take it down.
 *
 * Build against an installed libvsm:
 *   cc provision.c $(pkg-config --cflags --libs vsm) -o provision
 * usage: provision STATE_DIR DATASTORE_URI HYPERVISOR_URI DOMAIN GOLDEN_IMAGE VM
 *   e.g. provision ~/.vsm 'libvirt:///default?connect=qemu:///session' \
 *        qemu:///session vm1-dom debian.qcow2 vm1
 */
#include <stdio.h>
#include <vsm/vsm.h>

static int die(const char *what)
{
	const vsm_error *e = vsm_error_last();

	fprintf(stderr, "provision: %s: %s\n", what, e ? e->message : "?");
	return 1;
}

/* Make the call's -VSM_EEXISTS a success: a second run finds the datastore,
 * host, link and golden image of the first. */
static int ok_if_there(int rc)
{
	return rc == -VSM_EEXISTS ? 0 : rc;
}

int main(int argc, char **argv)
{
	vsm_ctx_opts opts = VSM_CTX_OPTS_INIT;
	vsm_host_opts host = VSM_HOST_OPTS_INIT;
	vsm_device_spec disk = VSM_DEVICE_SPEC_INIT;
	const vsm_device_spec *disks[] = { &disk };
	vsm_container_opts copts = VSM_CONTAINER_OPTS_INIT;
	vsm_deploy_opts dep = VSM_DEPLOY_OPTS_INIT;
	vsm_ctx *ctx;
	vsm_container *c;
	vsm_locator *loc;

	if (argc != 7) {
		fprintf(stderr, "usage: provision STATE_DIR DATASTORE_URI HYPERVISOR_URI DOMAIN "
			"GOLDEN_IMAGE VM\n");
		return 2;
	}
	opts.state_dir = argv[1];
	if (vsm_ctx_open(&ctx, &opts) < 0)
		return die("open");
	host.hypervisor_uri = argv[3];
	if (ok_if_there(vsm_datastore_add(ctx, "ds", argv[2], 0)) < 0 ||
	    ok_if_there(vsm_host_add(ctx, "here", &host)) < 0 ||
	    ok_if_there(vsm_host_link(ctx, "here", "ds", 0)) < 0)
		return die("inventory");

	/* The golden image, once per datastore (its format is probed). */
	if (ok_if_there(vsm_image_import(ctx, "ds", "golden", argv[5], NULL, 0)) < 0)
		return die("golden image import");

	/* The VM's disk: a linked clone, as large as the golden image. */
	disk.name = "root";
	disk.format = VSM_FORMAT_QCOW2;
	disk.base = "golden";
	copts.devices = disks;
	copts.n_devices = 1;
	if (vsm_container_create(&c, ctx, "ds", argv[6], &copts) < 0)
		return die("container create");
	if (vsm_attach(c, "here", 0) < 0)
		return die("attach");

	dep.domain = argv[4];
	dep.bus = "scsi";
	dep.target = "sda";
	if (vsm_device_deploy(&loc, c, "root", &dep) < 0)
		return die("deploy");
	printf("VM '%s': disk 'root' plugged into domain '%s' from %s\n%s", argv[6], argv[4],
	       vsm_locator_uri(loc), vsm_locator_disk_xml(loc));

	vsm_locator_free(loc);
	vsm_container_free(c);
	vsm_ctx_free(ctx);
	return 0;
}
