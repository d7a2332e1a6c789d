/*
 * Seed files made with the library's own encoders, for make-seeds.sh:
 *   fuzz-seedgen lease DIR   lease sectors of every kind (sector.c)
 *   fuzz-seedgen record DIR  container records with every optional part
 * Each file is named after what it holds. Deterministic output.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "record.h"
#include "sector.h"
#include "fuzz_util.h"

static void out(const char *dir, const char *name, const void *b, size_t n)
{
	char path[4200];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fz_write_file(path, b, n);
}

static void lease(const char *dir)
{
	uint8_t s[LS_SECTOR];
	vsm_lhdr h = { .format = 1, .mode = LS_MODE_CAW, .timeout_ms = 10000, .renew_ms = 2000 };
	vsm_hbrec hb = { 3, 7, 1234, 0x1122334455667788ull, 1767225600000, "host-a" };
	vsm_lv lv = { .lver = 5, .owner_slot = 3, .owner_gen = 7, .since_ms = 1767225600000,
		      .owner = "host-a/4242:99/ctx",
		      .uuid = "0b9e6a3c-8f0e-4c57-9a3e-2d7b1c6f5e41" };
	vsm_ballot b;

	ls_hdr_encode(s, &h);
	out(dir, "hdr-caw", s, sizeof(s));
	h.mode = LS_MODE_PLAIN;
	ls_hdr_encode(s, &h);
	out(dir, "hdr-plain", s, sizeof(s));
	ls_hb_encode(s, &hb);
	out(dir, "heartbeat", s, sizeof(s));
	ls_owner_encode(s, &lv);
	out(dir, "owner", s, sizeof(s));
	lv.flags = LV_FREE;
	ls_owner_encode(s, &lv);
	out(dir, "owner-free", s, sizeof(s));
	memset(&b, 0, sizeof(b));
	b.slot = 2;
	b.gen = 9;
	b.lver = 6;
	b.mbal = 65;
	b.bal = 65;
	b.inp = lv;
	b.inp.flags = 0;
	b.dec = lv;
	ls_ballot_encode(s, &b);
	out(dir, "ballot", s, sizeof(s));
	/* Format 2: a lease in a handover (doc/host-migration.md). */
	h.format = 2;
	ls_hdr_encode(s, &h);
	out(dir, "hdr-v2", s, sizeof(s));
	lv.flags = 0;
	lv.ho_state = LV_HO_ACCEPTED;
	lv.ho_slot = 4;
	lv.ho_gen = 2;
	snprintf(lv.ho_host, sizeof(lv.ho_host), "host-b");
	ls_owner_encode(s, &lv);
	out(dir, "owner-handover", s, sizeof(s));
	b.inp = lv;
	b.dec = lv;
	b.dec.ho_state = LV_HO_BEGUN;
	ls_ballot_encode(s, &b);
	out(dir, "ballot-handover", s, sizeof(s));
	memset(s, 0, sizeof(s));
	memcpy(s, "VSMGEN01", 8);
	vsm__put_le64(s + 8, 42);
	vsm__put_le32(s + 16, vsm__crc32(s, 16));
	out(dir, "generation", s, sizeof(s));
	memset(s, 0, sizeof(s));
	out(dir, "blank", s, sizeof(s));
}

static void record_out(const char *dir, const char *name, const vsm_record *r)
{
	char *json = NULL;

	if (vsm_record_encode(&json, r) < 0) {
		fprintf(stderr, "seedgen: cannot encode record %s\n", name);
		exit(1);
	}
	out(dir, name, json, strlen(json));
	free(json);
}

static void record(const char *dir)
{
	vsm_rec_layer chain[2] = { { "vm-d0-base.qcow2", VSM_FORMAT_QCOW2 },
				   { "golden.raw", VSM_FORMAT_RAW } };
	vsm_rec_device dev[2] = {
		{ "d0", "vm-d0.qcow2", 8u << 20, VSM_FORMAT_QCOW2, chain, 2 },
		{ "d1", "vm-d1.raw", 4u << 20, VSM_FORMAT_RAW, NULL, 0 },
	};
	vsm_rec_deploy dep = { "d0", "host-a", "file:///srv/ds/vm-d0.qcow2",
			       "/srv/ds/vm-d0.qcow2", "<disk type='file'/>", "dom1" };
	vsm_rec_ckpt_layer cl[2] = { { "d0", "vm-d0-c1.qcow2" }, { "d1", "vm-d1-c1.qcow2" } };
	vsm_rec_checkpoint ck[2] = {
		{ "c1", NULL, 1767225600, "vm-state-c1", 123457, 0x1234567890abcdefull, cl, 2,
		  "0b7e4c1a-3f2d-4a9e-8c6b-5d1f2e3a4b5c" },
		{ "c2", "c1", 1767225700, NULL, 0, 0, cl, 1, "" },
	};
	vsm_rec_frozen fr[4] = {
		{ "vm-d0-c1.qcow2", VSM_FORMAT_QCOW2, "vm-d0-base.qcow2", VSM_FORMAT_QCOW2,
		  "5f1d7c2e-0a4b-4e8f-9c3d-6b2a1e0f7d98", true, "" },
		{ "golden.raw", VSM_FORMAT_RAW, NULL, 0, NULL, false, "" },
		{ "vm-d0-base.qcow2", VSM_FORMAT_QCOW2, "golden.raw", VSM_FORMAT_RAW,
		  "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f", true, "" },
		{ "vm-d1-c1.qcow2", VSM_FORMAT_QCOW2, NULL, 0,
		  "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", true, "" },
	};
	vsm_rec_reservation resv = { 1u << 30, 1767225600000, "node1/4242:99/ctx", true };
	vsm_record r;

	memset(&r, 0, sizeof(r));
	strcpy(r.uuid, "0b9e6a3c-8f0e-4c57-9a3e-2d7b1c6f5e41");
	r.name = "vm";
	r.ctime = 1767225600;
	r.devices = dev;
	r.n_devices = 1;
	record_out(dir, "minimal.json", &r);
	r.n_devices = 2;
	r.state_key = "vm-state";
	r.state_size = 1u << 20;
	r.attached_host = "host-a";
	r.deploys = &dep;
	r.n_deploys = 1;
	r.lease_version = 3;
	r.thick = true;
	record_out(dir, "attached.json", &r);
	r.ckpts = ck;
	r.n_ckpts = 2;
	r.ckpt_current = "c2";
	r.layers = fr;
	r.n_layers = 4;
	record_out(dir, "checkpoints.json", &r);
	r.destroying = true;
	record_out(dir, "destroying.json", &r);
	memset(&r, 0, sizeof(r));
	strcpy(r.uuid, "7c1e2d3f-4a5b-4c6d-8e9f-0a1b2c3d4e5f");
	r.name = "held";
	r.ctime = 1767225600;
	r.resv = &resv;
	record_out(dir, "reservation.json", &r);
}

int main(int argc, char **argv)
{
	if (argc != 3 || (strcmp(argv[1], "lease") && strcmp(argv[1], "record"))) {
		fprintf(stderr, "usage: fuzz-seedgen lease|record DIR\n");
		return 2;
	}
	if (!strcmp(argv[1], "lease"))
		lease(argv[2]);
	else
		record(argv[2]);
	return 0;
}
