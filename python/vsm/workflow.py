"""Workflow templates (doc/workflows.md): declarative sequences of
operations run as one transaction, and the log of their runs."""

from __future__ import annotations

import json

import cffi
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

from . import _constants as K
from ._ffi import call, cstr, ffi, lib, pystr
from ._handle import _Handle, _Owner
from .errors import Error

if TYPE_CHECKING:
    from .context import Context

WorkflowProgressFn = Callable[[str, int, int, str, str], Any]
"""progress(run_id, step, n_steps, step_id, event); event is "step",
"done", "failed", "undo" or "undone". A true return cancels the run."""


@dataclass(frozen=True)
class Param:
    """A template parameter; default is JSON text, None when required."""
    name: str
    type: str
    default: Optional[str]


@dataclass(frozen=True)
class RunStep:
    """One step of a run's log."""
    id: str
    op: str
    state: str
    args: Optional[str]
    result: Optional[str]
    error: Optional[str]


@dataclass(frozen=True)
class Run:
    """A workflow run as the catalog keeps it."""
    id: str
    template: str
    state: str
    params: Optional[str]
    error: Optional[str]
    started: int
    ended: int
    steps: Tuple[RunStep, ...]

    @classmethod
    def _of(cls, r: Any) -> "Run":
        steps = tuple(RunStep(pystr(lib.vsm_run_step_id(r, i)) or "",
                              pystr(lib.vsm_run_step_op(r, i)) or "",
                              pystr(lib.vsm_run_step_state(r, i)) or "",
                              pystr(lib.vsm_run_step_args(r, i)),
                              pystr(lib.vsm_run_step_result(r, i)),
                              pystr(lib.vsm_run_step_error(r, i)))
                      for i in range(lib.vsm_run_step_count(r)))
        return cls(pystr(lib.vsm_run_id(r)) or "", pystr(lib.vsm_run_template(r)) or "",
                   pystr(lib.vsm_run_state(r)) or "", pystr(lib.vsm_run_params(r)),
                   pystr(lib.vsm_run_error(r)), int(lib.vsm_run_started(r)),
                   int(lib.vsm_run_ended(r)), steps)


class Workflow(_Handle):
    """A parsed workflow template, bound to its Context."""

    def __init__(self, ctx: "Context", ptr: Any) -> None:
        super().__init__(ptr, _Owner(ctx, "workflow", lib.vsm_workflow_free, ptr))
        self.context = ctx

    def _describe(self) -> str:
        return "vsm.Workflow"

    @property
    def name(self) -> str:
        """The template's name."""
        return pystr(lib.vsm_workflow_name(self._ptr())) or ""

    @property
    def params(self) -> List[Param]:
        """Its parameters."""
        p = self._ptr()
        return [Param(pystr(lib.vsm_workflow_param_name(p, i)) or "",
                      pystr(lib.vsm_workflow_param_type(p, i)) or "",
                      pystr(lib.vsm_workflow_param_default(p, i)))
                for i in range(lib.vsm_workflow_param_count(p))]

    @property
    def steps(self) -> List[Tuple[str, str]]:
        """(id, op) of its steps, in order."""
        p = self._ptr()
        return [(pystr(lib.vsm_workflow_step_id(p, i)) or "",
                 pystr(lib.vsm_workflow_step_op(p, i)) or "")
                for i in range(lib.vsm_workflow_step_count(p))]

    def run(self, params: Optional[Mapping[str, Any]] = None, *,
            progress: Optional[WorkflowProgressFn] = None) -> str:
        """Run the template as one transaction and return the run ID. On
        failure (or cancel) the run is rolled back and the step's error is
        raised with a ``run_id`` attribute."""
        keep: List[Any] = []
        strs = [cstr("%s=%s" % (k, _param_text(v))) for k, v in (params or {}).items()]
        arr = ffi.new("char *[]", strs) if strs else ffi.NULL
        keep += [strs, arr]
        opts = ffi.new("vsm_workflow_run_opts *")
        opts.version = K.VSM_WORKFLOW_RUN_OPTS_VERSION
        opts.params = arr
        opts.n_params = len(strs)
        exc: List[BaseException] = []
        if progress is not None:
            def tramp(run_id: Any, step: int, n: int, step_id: Any, event: Any, opaque: Any) -> int:
                if exc:
                    return 1
                try:
                    return 1 if progress(pystr(run_id) or "", int(step), int(n),
                                         pystr(step_id) or "", pystr(event) or "") else 0
                except BaseException as e:
                    exc.append(e)
                    return 1
            cb = ffi.callback("vsm_workflow_progress_fn", tramp)
            keep.append(cb)
            opts.progress = cb
        run_id = ffi.new("char[]", K.VSM_WORKFLOW_RUN_ID_LEN + 1)
        try:
            with self._lock:
                call(lib.vsm_workflow_run, self._ptr(), opts, run_id)
        except Error as e:
            e.run_id = ffi.string(run_id).decode()  # type: ignore[attr-defined]
            if exc:
                raise exc[0] from e
            raise
        return ffi.string(run_id).decode()


def _param_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float, str)):
        return str(v)
    return json.dumps(v)


_libc_ffi = cffi.FFI()
_libc_ffi.cdef("void *malloc(size_t size);")
_libc = _libc_ffi.dlopen(None)


def _malloc_str(text: str) -> Any:
    """A malloc'd copy of @text, as the library frees a step's result."""
    data = text.encode()
    p = _libc.malloc(len(data) + 1)
    if p == _libc_ffi.NULL:
        raise MemoryError
    c = ffi.cast("char *", int(_libc_ffi.cast("uintptr_t", p)))
    ffi.memmove(c, data + b"\0", len(data) + 1)
    return c


OpRun = Callable[["Context", Dict[str, Any]], Optional[Dict[str, Any]]]
OpUndo = Callable[["Context", Dict[str, Any], Optional[Dict[str, Any]]], None]


def _fail(name: str, e: BaseException) -> int:
    code = e.code if isinstance(e, Error) and e.code else 7  # VSM_EIO
    msg = "workflow op '%s': %s: %s" % (name, type(e).__name__, e)
    return int(lib.vsm_error_set(code, cstr("%s"), cstr(msg)))


def register_op(ctx: "Context", name: str, schema: Union[str, Mapping[str, Any]], run: OpRun,
                undo: Optional[OpUndo] = None) -> None:
    """Make operation @name ("NAMESPACE.VERB") available to templates
    parsed on @ctx. run(ctx, args) returns the results (a dict) or None;
    undo(ctx, args, results) undoes it (None: the step cannot be undone).
    An exception fails the step (its vsm.Error code, else VSM_EIO) with
    its text as the message. The callbacks live as long as @ctx."""
    def do_tramp(cctx: Any, args: Any, result: Any, opaque: Any) -> int:
        try:
            out = run(ctx, json.loads(pystr(args) or "{}"))
            if out is not None:
                result[0] = _malloc_str(json.dumps(out))
            return 0
        except BaseException as e:
            return _fail(name, e)

    def undo_tramp(cctx: Any, args: Any, result: Any, opaque: Any) -> int:
        try:
            res = pystr(result)
            assert undo is not None
            undo(ctx, json.loads(pystr(args) or "{}"), json.loads(res) if res else None)
            return 0
        except BaseException as e:
            return _fail(name, e)

    keep = [ffi.callback("vsm_workflow_do_fn", do_tramp)]
    op = ffi.new("vsm_workflow_op *")
    op.version = K.VSM_WORKFLOW_OP_VERSION
    strs = [cstr(name), cstr(schema if isinstance(schema, str) else json.dumps(schema))]
    op.name, op.schema = strs
    op.run = keep[0]
    if undo is not None:
        keep.append(ffi.callback("vsm_workflow_undo_fn", undo_tramp))
        op.undo = keep[1]
    call(lib.vsm_workflow_op_register, ctx._ptr(), op)
    ctx._keep_callbacks(keep)


def parse(ctx: "Context", text: str, origin: Optional[str] = None) -> Workflow:
    """Parse a template from JSON text (@origin names it in messages)."""
    out = ffi.new("vsm_workflow **")
    call(lib.vsm_workflow_parse, out, ctx._ptr(), cstr(text), cstr(origin))
    return Workflow(ctx, out[0])


def load(ctx: "Context", path: str) -> Workflow:
    """Parse the template in file @path."""
    out = ffi.new("vsm_workflow **")
    call(lib.vsm_workflow_load, out, ctx._ptr(), cstr(path))
    return Workflow(ctx, out[0])


def runs(ctx: "Context") -> List[Run]:
    """Every run in the context's catalog."""
    out = ffi.new("vsm_run ***")
    n = ffi.new("size_t *")
    call(lib.vsm_run_list, out, n, ctx._ptr())
    try:
        return [Run._of(out[0][i]) for i in range(n[0])]
    finally:
        lib.vsm_run_list_free(out[0], n[0])


def lookup_run(ctx: "Context", run_id: str) -> Run:
    """Run @run_id; NotFoundError if none."""
    out = ffi.new("vsm_run **")
    call(lib.vsm_run_lookup, out, ctx._ptr(), cstr(run_id))
    try:
        return Run._of(out[0])
    finally:
        lib.vsm_run_free(out[0])


__all__: List[str] = ["register_op", "Param", "Run", "RunStep", "Workflow", "parse", "load", "runs", "lookup_run"]
