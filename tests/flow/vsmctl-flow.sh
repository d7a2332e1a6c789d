#!/bin/bash
# vsmctl workflow end to end (doc/workflows.md, issue 19): validate (the
# examples, and refusals naming the field), run of examples/workflows/
# provision.json and nightly.json, list and show, a failing last step rolled
# back with nothing left, on_error continue, cancel of an ended run, and a
# run cancelled by Ctrl-C, cancelled from another process, and killed with
# SIGKILL (rolled back by the next vsmctl). No timing assertions: the runs
# that are interrupted are held still by their own stdout (a pipe left
# almost full and not read), so the signal always lands mid-run.
# usage: vsmctl-flow.sh PATH_TO_VSMCTL
set -u
vsmctl=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
examples=$(cd "$(dirname "$0")/../../examples/workflows" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vsmctl-flow.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export VSM_STATE_DIR=$tmp/state
failures=0
checks=0

ok()   { checks=$((checks + 1)); echo "ok: $*"; }
bad()  { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
# run ARGS...: expect success; stdout in $out
run() {
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then ok "vsmctl $*"
	else bad "vsmctl $* exited $?: $(cat "$tmp/err")"; fi
}
# refuse TEXT ARGS...: expect failure, TEXT in "vsmctl: ..." on stderr
refuse() {
	local want=$1; shift
	if out=$("$vsmctl" "$@" 2>"$tmp/err"); then bad "vsmctl $* succeeded"
	elif grep -qF -- "$want" "$tmp/err" && grep -q '^vsmctl: ' "$tmp/err"; then
		ok "vsmctl $* refused: $(head -1 "$tmp/err")"
	else bad "vsmctl $* refused without '$want': $(cat "$tmp/err")"; fi
}
# jget EXPR: a Python expression on the JSON in $out (as j)
jget() { python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print($1)" <<<"$out"; }
expect() { if [ "$1" = "$2" ]; then ok "$3"; else bad "$3: got '$1', want '$2'"; fi; }
# lines_parse: every line of $out is a JSON object
lines_parse() {
	python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' <<<"$out" 2>"$tmp/perr"
}
# show RUN-ID: the run as `workflow show --json` gives it, in $out
show() { out=$("$vsmctl" --json workflow show "$1" 2>"$tmp/err"); }
ds_files() { ls "$tmp/ds" | sort; }

# --- validate ---
run workflow validate "$examples/provision.json"
grep -q "template 'provision' is valid" <<<"$out" && grep -q "data_size *size *default" <<<"$out" &&
	grep -q "deploy_data *device.deploy" <<<"$out" &&
	ok "validate prints the name, params and steps" || bad "validate output: $out"
run --json workflow validate "$examples/nightly.json"
expect "$(jget '[s["op"] for s in j["steps"]][-1]')" "checkpoint.delete" \
	"nightly: the deletion (cannot be undone) is last"
expect "$(jget '[p["name"] for p in j["params"] if p["required"]]')" \
	"['container', 'dir', 'tonight', 'last_night']" "validate --json: required params"

cat >"$tmp/bad-op.json" <<'EOF'
{"name": "bad", "steps": [{"id": "a", "op": "container.crate", "args": {}}]}
EOF
refuse "steps[0].op: unknown op 'container.crate'" workflow validate "$tmp/bad-op.json"
cat >"$tmp/bad-ref.json" <<'EOF'
{"name": "bad", "steps": [
 {"id": "a", "op": "container.create", "args": {"name": "x", "devices": [{"name": "r", "size": "1M"}]}},
 {"id": "b", "op": "container.attach", "args": {"container": "${steps.on.name}", "host": "h1"}}]}
EOF
refuse "steps[1].args.container: no earlier step 'on'" workflow validate "$tmp/bad-ref.json"
cat >"$tmp/bad-default.json" <<'EOF'
{"name": "bad", "params": {"size": {"type": "size", "default": "lots"}},
 "steps": [{"id": "a", "op": "place.datastore", "args": {"size": "${param.size}"}}]}
EOF
refuse "params.size.default: not a size" workflow validate "$tmp/bad-default.json"
cat >"$tmp/bad-order.json" <<'EOF'
{"name": "bad", "steps": [
 {"id": "a", "op": "checkpoint.delete", "args": {"container": "c", "name": "n"}},
 {"id": "b", "op": "checkpoint.create", "args": {"container": "c", "name": "m"}}]}
EOF
refuse "steps[1].on_error" workflow validate "$tmp/bad-order.json"
refuse "No such file" workflow validate "$tmp/none.json"
refuse "workflow: unknown command" workflow frobnicate

# --- a datastore with a golden image, a host ---
run datastore add ds "file://$tmp/ds" --create
run host add h1
run host link h1 ds
truncate -s 32M "$tmp/ds/golden.img"

# --- provision.json ---
run workflow run "$examples/provision.json" --param name=vm1 --param host=h1 \
	--param golden=golden.img
rid1=$(sed -n '1s/^run \([0-9a-f-]\{36\}\): .*/\1/p' <<<"$out")
[ -n "$rid1" ] && ok "run prints the run id first ($rid1)" || bad "no run id in: $out"
expect "$(grep -c '^\[[0-9]/4\] done ' <<<"$out")" "4" "run prints each step done"
expect "$(tail -1 <<<"$out")" "run $rid1: done" "run prints the outcome"
run --json container show vm1
expect "$(jget 'j["attached_host"]')" "h1" "provisioned container attached to h1"
expect "$(jget '[d["name"] for d in j["devices"]]')" "['root', 'data']" "with both devices"
expect "$(jget 'all(d["locator"] for d in j["devices"])')" "True" "both deployed"
expect "$(jget 'j["devices"][0]["size"]')" "33554432" "root takes the golden image's size"
expect "$(jget 'j["devices"][1]["size"]')" "67108864" "data has the default size"

run --json workflow run "$examples/provision.json" --param name=vm2 --param host=h1 \
	--param golden=golden.img --param data_size=16M
lines_parse && ok "run --json: every line parses" || bad "run --json: $(cat "$tmp/perr")"
expect "$(tail -1 <<<"$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], j["error"])')" \
	"done None" "run --json: final object says done"
expect "$(head -1 <<<"$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["event"], j["step"], j["op"])')" \
	"step create container.create" "run --json: first event is step 'create' about to run"
rid2=$(tail -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
expect "$(grep -c '"event":"done"' <<<"$out")" "4" "run --json: a done event per step"
run --json container show vm2
expect "$(jget 'j["devices"][1]["size"]')" "16777216" "--param data_size=16M is read as a size"

run workflow list
grep -q "^$rid1 *provision *done" <<<"$out" && grep -q "^$rid2 *provision *done" <<<"$out" &&
	ok "list shows both runs done" || bad "list: $out"
run --json workflow list
expect "$(jget '[r["id"] for r in j]')" "['$rid1', '$rid2']" "list --json, oldest first"
run --json workflow show "$rid1"
expect "$(jget '[s["state"] for s in j["steps"]]')" "['done', 'done', 'done', 'done']" \
	"show: every step done"
expect "$(jget 'j["params"]["data_size"], j["steps"][0]["result"]["name"]')" "67108864 vm1" \
	"show: params and step results"
run workflow show "$rid1"
grep -q "^state: *done" <<<"$out" && grep -q "deploy_root *device.deploy *done" <<<"$out" &&
	ok "show (text) lists the steps" || bad "show: $out"
refuse "has ended" workflow cancel "$rid1"
refuse "no workflow run 'nosuch'" workflow cancel nosuch
refuse "no workflow run" workflow show nosuch
refuse "name" workflow run "$examples/provision.json" --param host=h1
refuse "bad --param" workflow run "$examples/provision.json" --param nokey

# --- a last step that fails: everything undone, nothing left ---
before=$(ds_files)
cat >"$tmp/fail-last.json" <<'EOF'
{"name": "fail-last", "steps": [
 {"id": "create", "op": "container.create", "args": {"name": "doomed", "datastore": "ds",
  "devices": [{"name": "root", "size": "8M"}, {"name": "data", "size": "4M", "format": "qcow2"}]}},
 {"id": "snap", "op": "checkpoint.create", "args": {"container": "doomed", "name": "s1"}},
 {"id": "attach", "op": "container.attach", "args": {"container": "doomed", "host": "h1"}},
 {"id": "deploy", "op": "device.deploy", "args": {"container": "doomed", "device": "root"}},
 {"id": "deploy_none", "op": "device.deploy", "args": {"container": "doomed", "device": "nosuch"}}]}
EOF
if out=$("$vsmctl" --json workflow run "$tmp/fail-last.json" 2>"$tmp/err"); then
	bad "a run whose last step fails exited 0"
else
	ok "a run whose last step fails exits non-zero: $(cat "$tmp/err")"
fi
lines_parse && ok "failed run --json: every line parses" || bad "failed run --json: $(cat "$tmp/perr")"
expect "$(tail -1 <<<"$out" | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["state"], "deploy_none" in j["error"])')" \
	"rolled-back True" "final object: rolled-back, the error names the step"
expect "$(grep -c '"event":"undone"' <<<"$out")" "4" "each done step reported undone"
ridf=$(tail -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
show "$ridf"
expect "$(jget 'j["state"], [s["state"] for s in j["steps"]]')" \
	"rolled-back ['undone', 'undone', 'undone', 'undone', 'failed']" "show: steps undone, the last failed"
refuse "doomed" container show doomed
expect "$(ds_files)" "$before" "no file left on the datastore"

# --- on_error continue: the run is done, the step failed ---
cat >"$tmp/continue.json" <<'EOF'
{"name": "keep-going", "steps": [
 {"id": "create", "op": "container.create", "args": {"name": "kg", "datastore": "ds",
  "devices": [{"name": "root", "size": "4M"}]}},
 {"id": "maybe", "op": "checkpoint.delete", "on_error": "continue",
  "args": {"container": "kg", "name": "not-there"}},
 {"id": "after", "op": "checkpoint.create", "on_error": "continue",
  "args": {"container": "kg", "name": "c1"}}]}
EOF
run --json workflow run "$tmp/continue.json"
ridc=$(tail -1 <<<"$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["run"])')
show "$ridc"
expect "$(jget 'j["state"], [s["state"] for s in j["steps"]]')" "done ['done', 'failed', 'done']" \
	"on_error continue: run done, that step failed, the next done"
expect "$(jget 'j["steps"][1]["error"] is not None')" "True" "the failed step keeps its error"
run container destroy kg

# --- nightly.json, twice, then a restore of the chain ---
run container create db --datastore ds --disk root:8M:qcow2 --thin
mkdir -p "$tmp/bk"
head -c 1M /dev/urandom >"$tmp/w0"
"$vsmctl" image write ds/db:root 0 <"$tmp/w0" && ok "write to db" || bad "write to db"
run backup db "$tmp/bk/full.bk" --checkpoint night0
head -c 64K /dev/urandom | "$vsmctl" image write ds/db:root 1048576
run workflow run "$examples/nightly.json" --param container=db --param dir="$tmp/bk" \
	--param tonight=night1 --param last_night=night0
head -c 64K /dev/urandom | "$vsmctl" image write ds/db:root 4194304
run workflow run "$examples/nightly.json" --param container=db --param dir="$tmp/bk" \
	--param tonight=night2 --param last_night=night1
run --json checkpoint list db
cps=$(python3 -c 'import json,sys
j=json.loads(sys.stdin.read())
def names(x):
    if isinstance(x, dict):
        for k in ("name", "checkpoint"):
            if isinstance(x.get(k), str): yield x[k]
        for v in x.values(): yield from names(v)
    elif isinstance(x, list):
        for v in x: yield from names(v)
print(sorted(set(n for n in names(j) if n.startswith("night"))))' <<<"$out")
expect "$cps" "['night2']" "nightly twice: only tonight's checkpoint is left"
[ -s "$tmp/bk/db-night1.bk" ] && [ -s "$tmp/bk/db-night2.bk" ] &&
	ok "two incremental backup files" || bad "backup files: $(ls "$tmp/bk")"
run restore "$tmp/bk/full.bk" "$tmp/bk/db-night1.bk" "$tmp/bk/db-night2.bk" --datastore ds \
	--name db-restored
# The active layer is not the device's first file: read through vsmctl.
if cmp -s <("$vsmctl" image read ds/db:root 0 8388608) \
	<("$vsmctl" image read ds/db-restored:root 0 8388608); then
	ok "the restored chain reads the same as the source"
else
	bad "the restored chain differs from the source"
fi
# A nightly whose incremental cannot be taken leaves no checkpoint, no file.
refuse "template 'nightly', step 'backup'" workflow run "$examples/nightly.json" \
	--param container=db --param dir="$tmp/bk" --param tonight=night3 --param last_night=nosuch
run --json checkpoint list db
grep -q night3 <<<"$out" && bad "night3 left after a failed nightly" || ok "failed nightly: no checkpoint left"
[ -e "$tmp/bk/db-night3.bk" ] && bad "failed nightly: backup file left" || ok "failed nightly: no file left"
run container destroy db-restored

# --- interrupted runs ---
# A long template: a container, then many checkpoints.
python3 - "$tmp/slow.json" <<'EOF'
import json, sys
steps = [{"id": "create", "op": "container.create",
          "args": {"name": "${param.name}", "datastore": "ds",
                   "devices": [{"name": "root", "size": "4M", "format": "qcow2"}]}}]
steps += [{"id": "cp%d" % i, "op": "checkpoint.create",
           "args": {"container": "${steps.create.name}", "name": "cp%d" % i}} for i in range(1, 61)]
json.dump({"name": "slow", "params": {"name": {"type": "string"}}, "steps": steps},
          open(sys.argv[1], "w"))
EOF
run workflow validate "$tmp/slow.json"

# held ACTION ARGS...: run `vsmctl ARGS...` with its stdout a pipe filled
# to within a few lines of full and not read, so the run stops in its
# progress callback a few steps in; once the catalog shows two steps done
# ($min_done, if set), do ACTION (int: SIGINT; cancel: `workflow cancel` from this process;
# kill: SIGKILL), then read the pipe. Prints a JSON object: run, rc (the
# run's exit status, negative for a signal), out, aux_rc, aux_err.
held() {
	MIN_DONE=${min_done:-2} python3 - "$vsmctl" "$@" <<'EOF'
import fcntl, json, os, signal, subprocess, sys, time
vsmctl, action, args = sys.argv[1], sys.argv[2], sys.argv[3:]
min_done = int(os.environ["MIN_DONE"])
r, w = os.pipe()
size = fcntl.fcntl(w, getattr(fcntl, "F_GETPIPE_SZ", 1032))
# Room for a dozen lines (about six steps) of the 61-step template.
os.write(w, b"#" * (size - 1500))
p = subprocess.Popen([vsmctl] + args, stdout=w, stderr=subprocess.PIPE)
os.close(w)
rid = None
res = {"run": None, "rc": None, "out": "", "aux_rc": None, "aux_err": ""}
def q(*a):
    c = subprocess.run([vsmctl, "--json"] + list(a), capture_output=True, text=True)
    return json.loads(c.stdout) if c.returncode == 0 else None
polls = 0
while p.poll() is None:
    polls += 1
    if polls > 6000:  # a hang guard, not a timing assertion
        res["aux_err"] = "the run never got %d steps done" % min_done
        break
    runs = [x for x in (q("workflow", "list") or []) if x["state"] == "running"]
    if runs:
        rid = runs[-1]["id"]
        s = q("workflow", "show", rid)
        if s and sum(st["state"] == "done" for st in s["steps"]) >= min_done:
            break
    time.sleep(0.05)
res["run"] = rid
if p.poll() is None and polls <= 6000:
    if action == "int":
        os.kill(p.pid, signal.SIGINT)
    elif action == "kill":
        os.kill(p.pid, signal.SIGKILL)
        p.wait()
    elif action == "cancel":
        c = subprocess.run([vsmctl, "workflow", "cancel", rid], capture_output=True, text=True)
        res["aux_rc"], res["aux_err"] = c.returncode, c.stdout + c.stderr
else:
    res["aux_err"] = "the run ended before it was interrupted"
data = b""
while True:
    b = os.read(r, 65536)
    if not b:
        break
    data += b
p.wait()
res["rc"] = p.returncode
res["out"] = data.decode().lstrip("#")
res["err"] = p.stderr.read().decode()
print(json.dumps(res))
EOF
}

# Ctrl-C: the run is cancelled (rolled back), vsmctl exits non-zero.
before=$(ds_files)
out=$(held int --json workflow run "$tmp/slow.json" --param name=slow1)
rid=$(jget 'j["run"]')
expect "$(jget 'j["rc"] not in (0, None)')" "True" "SIGINT: vsmctl exits non-zero ($(jget 'j["aux_err"]'))"
expect "$(jget 'json.loads(j["out"].splitlines()[-1])["state"]')" "cancelled" "SIGINT: final object says cancelled"
expect "$(jget 'all(json.loads(l) for l in j["out"].splitlines())')" "True" "SIGINT: every --json line parses"
expect "$(jget '"cancelling run" in j["err"]')" "True" "SIGINT: vsmctl says it cancels"
show "$rid"
expect "$(jget 'j["state"]')" "cancelled" "SIGINT: show says cancelled"
expect "$(jget 'sorted(set(s["state"] for s in j["steps"]))')" "['skipped', 'undone']" \
	"SIGINT: done steps undone, the rest skipped"
refuse "slow1" container show slow1
expect "$(ds_files)" "$before" "SIGINT: no file left on the datastore"

# workflow cancel from another process while the run goes on.
out=$(held cancel workflow run "$tmp/slow.json" --param name=slow2)
rid=$(jget 'j["run"]')
expect "$(jget 'j["aux_rc"]')" "0" "workflow cancel RUN-ID of a live run: exit 0 ($(jget 'j["aux_err"].strip()'))"
expect "$(jget 'j["rc"] not in (0, None)')" "True" "cancelled run: vsmctl exits non-zero"
expect "$(jget 'j["out"].splitlines()[-1].startswith("run %s: cancelled: " % j["run"])')" "True" \
	"cancelled run: the outcome line says cancelled"
show "$rid"
expect "$(jget 'j["state"]')" "cancelled" "show says cancelled"
refuse "slow2" container show slow2
expect "$(ds_files)" "$before" "cancel: no file left on the datastore"
refuse "has ended (cancelled)" workflow cancel "$rid"

# SIGKILL mid-run: the next vsmctl (any command) rolls it back.
out=$(held kill workflow run "$tmp/slow.json" --param name=slow3)
rid=$(jget 'j["run"]')
expect "$(jget 'j["rc"]')" "-9" "the run's vsmctl was killed"
run container list
grep -q slow3 <<<"$out" && bad "container of the killed run still listed" ||
	ok "the next vsmctl rolled the killed run back"
show "$rid"
expect "$(jget 'j["state"]')" "rolled-back" "show says rolled-back after SIGKILL"
expect "$(jget '"died" in (j["error"] or "")')" "True" "its error says its process died"
expect "$(jget 'sorted(set(s["state"] for s in j["steps"]))')" "['skipped', 'undone']" \
	"after SIGKILL: done steps undone, the rest skipped"
expect "$(ds_files)" "$before" "SIGKILL: no file left on the datastore"

# Ctrl-C past a step that cannot be undone: the run goes on to the end.
python3 - "$tmp/no-return.json" <<'EOF'
import json, sys
steps = [{"id": "create", "op": "container.create",
          "args": {"name": "nr", "datastore": "ds", "devices": [{"name": "root", "size": "4M"}]}},
         {"id": "cp", "op": "checkpoint.create", "args": {"container": "nr", "name": "a"}},
         {"id": "del", "op": "checkpoint.delete", "args": {"container": "nr", "name": "a"}}]
steps += [{"id": "cp%d" % i, "op": "checkpoint.create", "on_error": "continue",
           "args": {"container": "nr", "name": "cp%d" % i}} for i in range(1, 41)]
json.dump({"name": "no-return", "steps": steps}, open(sys.argv[1], "w"))
EOF
out=$(min_done=3 held int workflow run "$tmp/no-return.json")
expect "$(jget 'j["rc"], j["out"].splitlines()[-1] == "run %s: done" % j["run"]')" "0 True" \
	"SIGINT past the point of no return: the run finishes, exit 0 ($(jget 'j["aux_err"]'))"
expect "$(jget '"too late to cancel" in j["err"]')" "True" "and vsmctl says it was too late"
run container destroy nr

echo "$checks checks, $failures failures"
[ "$failures" -eq 0 ]
