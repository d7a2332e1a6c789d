"""vsm.image: disk images (qcow2 and raw, with backing chains) through
libvsm's copy-on-write engine, by path or on a datastore
(Context.open_device_image, Container.open_image)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Optional, Tuple, Union

from . import _constants as K
from ._ffi import RANK_IMAGE, call, cstr, ffi, lib, pystr
from ._handle import Callbacks, ProgressFn, _Handle, _Owner
from .errors import Error

if TYPE_CHECKING:
    from .context import Context

PathLike = Union[str, "os.PathLike[str]"]

FORMAT_RAW = 1
FORMAT_QCOW2 = 2


@dataclass(frozen=True)
class ImageInfo:
    """One image of a chain, as Image.info() reports it."""
    filename: Optional[str]
    format: str
    virtual_size: int
    cluster_size: int
    qcow2_version: int
    refcount_bits: int
    snapshots: int
    dirty: bool
    corrupt: bool
    file_size: int
    allocated_bytes: int
    backing: Optional[str]
    backing_format: Optional[str]


@dataclass(frozen=True)
class Extent:
    """A range of the guest disk of like status (Image.map())."""
    start: int
    length: int
    depth: int
    present: bool
    data: bool
    zero: bool
    compressed: bool
    offset: Optional[int]


@dataclass(frozen=True)
class CheckResult:
    """What Image.check() found (and fixed)."""
    corruptions: int
    leaks: int
    corruptions_fixed: int
    leaks_fixed: int
    allocated_clusters: int
    image_end: int


@dataclass(frozen=True)
class Bitmap:
    """A persistent dirty bitmap of a qcow2 image."""
    name: str
    granularity: int
    enabled: bool
    in_use: bool


@dataclass(frozen=True)
class CopyStats:
    """What copy() did."""
    bytes_copied: int
    layers_copied: int
    layers_reused: int


def _open_opts(keep: List[Any], *, readonly: bool = False, no_backing: bool = False,
               rdwr: bool = False, repair: bool = False, format: Optional[str] = None,
               cache_max: int = 0) -> Any:
    opts = ffi.new("vsm_image_open_opts *")
    keep.append(opts)
    opts.version = K.VSM_IMAGE_OPEN_OPTS_VERSION
    opts.flags = ((K.VSM_IMAGE_OPEN_RDONLY if readonly else 0) |
                  (K.VSM_IMAGE_OPEN_NO_BACKING if no_backing else 0) |
                  (K.VSM_IMAGE_OPEN_RDWR if rdwr else 0) |
                  (K.VSM_IMAGE_OPEN_REPAIR if repair else 0))
    f = cstr(format)
    keep.append(f)
    opts.format = f
    opts.cache_max = cache_max
    return opts


def _convert_opts(keep: List[Any], format: Optional[str], cluster_size: int,
                  bitmaps: bool = False) -> Any:
    opts = ffi.new("vsm_image_convert_opts *")
    keep.append(opts)
    opts.version = K.VSM_IMAGE_CONVERT_OPTS_VERSION
    f = cstr(format or "qcow2")
    keep.append(f)
    opts.format = f
    opts.cluster_size = cluster_size
    opts.flags = K.VSM_IMAGE_CONVERT_BITMAPS if bitmaps else 0
    return opts


def create(path: PathLike, size: int = 0, *, cluster_size: int = 0, refcount_bits: int = 0,
           backing: Optional[str] = None, backing_format: Optional[str] = None) -> None:
    """Create a new qcow2 v3 image at @path (which must not exist): @size
    bytes, or the backing image's size when 0."""
    opts = ffi.new("vsm_image_create_opts *")
    opts.version = K.VSM_IMAGE_CREATE_OPTS_VERSION
    opts.size = size
    opts.cluster_size = cluster_size
    opts.refcount_bits = refcount_bits
    keep = [cstr(backing), cstr(backing_format)]
    opts.backing, opts.backing_format = keep
    call(lib.vsm_image_create, cstr(os.fspath(path)), opts, 0)


def convert(src: PathLike, dst: PathLike, *, format: str = "qcow2", cluster_size: int = 0,
            bitmaps: bool = False) -> None:
    """Copy what @src reads (through its chain) into a new image @dst."""
    keep: List[Any] = []
    call(lib.vsm_image_convert, cstr(os.fspath(src)), cstr(os.fspath(dst)),
         _convert_opts(keep, format, cluster_size, bitmaps))


def copy(src: PathLike, dst: PathLike, *, reuse_dir: Optional[PathLike] = None,
         progress: Optional[ProgressFn] = None) -> CopyStats:
    """Copy the chain topped by @src to a new top @dst layer by layer,
    reusing parents found in @reuse_dir. A true return from
    progress(done, total) cancels: CanceledError, and no file is left."""
    cbs = Callbacks()
    opts = ffi.new("vsm_image_copy_opts *")
    opts.version = K.VSM_IMAGE_COPY_OPTS_VERSION
    rd = cstr(os.fspath(reuse_dir) if reuse_dir is not None else None)
    opts.reuse_dir = rd
    opts.progress = cbs.progress(progress, 1, "vsm_image_copy_progress_fn")
    stats = ffi.new("vsm_image_copy_stats *")
    stats.version = K.VSM_IMAGE_COPY_STATS_VERSION
    try:
        call(lib.vsm_image_copy, cstr(os.fspath(src)), cstr(os.fspath(dst)), opts, stats)
    except Error as e:
        cbs.reraise(e)
        raise
    return CopyStats(int(stats.bytes_copied), int(stats.layers_copied), int(stats.layers_reused))


class Image(_Handle):
    """An open image with its backing chain. Image.open(path) for a local
    file; Context.open_device_image() / Container.open_image() for a
    device on a datastore. Close it (or use ``with``): closing flushes."""

    def __init__(self, ptr: Any, owner: _Owner, what: str) -> None:
        super().__init__(ptr, owner)
        self._what = what
        self.context: Optional["Context"] = None

    @classmethod
    def _own(cls, ctx: Optional["Context"], ptr: Any, what: str) -> "Image":
        img = cls(ptr, _Owner(ctx, "image", lib.vsm_image_close, ptr, rank=RANK_IMAGE), what)
        img.context = ctx  # a device image needs its context open
        return img

    @classmethod
    def open(cls, path: PathLike, *, readonly: bool = False, no_backing: bool = False,
             repair: bool = False, format: Optional[str] = None, cache_max: int = 0) -> "Image":
        """Open the image at @path (read-write unless readonly)."""
        keep: List[Any] = []
        opts = _open_opts(keep, readonly=readonly, no_backing=no_backing, repair=repair,
                          format=format, cache_max=cache_max)
        out = ffi.new("vsm_image **")
        call(lib.vsm_image_open, out, cstr(os.fspath(path)), opts)
        return cls._own(None, out[0], os.fspath(path))

    def _describe(self) -> str:
        return "vsm.Image %r" % self._what

    def __repr__(self) -> str:
        return "<vsm.Image %r%s>" % (self._what, " closed" if self.closed else "")

    def _call(self, fn: Any, *args: Any) -> int:
        with self._lock:
            return call(fn, self._ptr(), *args)

    def _call_out(self, fn: Any, *outs: Any) -> int:
        # The calls whose output parameters come before the image.
        with self._lock:
            return call(fn, *outs, self._ptr())

    def close(self) -> None:
        """Flush, mark clean and close; raises the final flush's error."""
        owner = self._owner
        self._owner = None
        if owner is None or owner.released:
            return
        owner.released = True
        with self._lock:
            call(lib.vsm_image_close, self._cptr)

    @property
    def size(self) -> int:
        """Virtual size in bytes."""
        return int(lib.vsm_image_size(self._ptr()))

    def read(self, length: int, offset: int = 0) -> bytes:
        """@length bytes at guest offset @offset, through the chain."""
        buf = ffi.new("char[]", length)
        self._call(lib.vsm_image_read, buf, length, offset)
        return ffi.buffer(buf, length)[:]

    def readinto(self, buf: Any, offset: int = 0) -> int:
        """Fill the writable buffer @buf from guest offset @offset."""
        cbuf = ffi.from_buffer(buf, require_writable=True)
        self._call(lib.vsm_image_read, cbuf, len(cbuf), offset)
        return len(cbuf)

    def write(self, data: Union[bytes, bytearray, memoryview], offset: int = 0) -> None:
        """Write @data at guest offset @offset (durable after flush())."""
        cbuf = ffi.from_buffer(data)
        self._call(lib.vsm_image_write, cbuf, len(cbuf), offset, 0)

    def write_zeroes(self, offset: int, length: int, *, unmap: bool = False) -> None:
        """Make the range read as zeros."""
        self._call(lib.vsm_image_write_zeroes, offset, length, K.VSM_IMAGE_ZERO_UNMAP if unmap else 0)

    def discard(self, offset: int, length: int) -> None:
        """Discard the range (reads as zeros, storage released)."""
        self._call(lib.vsm_image_discard, offset, length, 0)

    def flush(self) -> None:
        """Make every completed write durable."""
        self._call(lib.vsm_image_flush)

    def info(self, depth: int = 0) -> ImageInfo:
        """The image at @depth of the chain (0: this one)."""
        out = ffi.new("vsm_image_info **")
        with self._lock:
            call(lib.vsm_image_info_get, out, self._ptr(), depth)
        i = out[0]
        try:
            fmt = {FORMAT_RAW: "raw", FORMAT_QCOW2: "qcow2"}.get(i.format, str(i.format))
            return ImageInfo(pystr(i.filename), fmt, int(i.virtual_size), int(i.cluster_size),
                             int(i.qcow2_version), int(i.refcount_bits), int(i.snapshots),
                             bool(i.dirty), bool(i.corrupt), int(i.file_size),
                             int(i.allocated_bytes), pystr(i.backing), pystr(i.backing_format))
        finally:
            lib.vsm_image_info_free(i)

    def chain(self) -> List[ImageInfo]:
        """info() of every image of the chain, top first."""
        from .errors import NotFoundError
        out = []
        while True:
            try:
                out.append(self.info(len(out)))
            except NotFoundError:
                return out

    def map(self) -> List[Extent]:
        """The guest disk as ranges of like status (like qemu-img map)."""
        out = ffi.new("vsm_image_extent **")
        n = ffi.new("size_t *")
        self._call_out(lib.vsm_image_map, out, n)
        try:
            return [_extent(out[0][i]) for i in range(n[0])]
        finally:
            lib.vsm_image_extent_list_free(out[0])

    def check(self, *, repair: bool = False) -> CheckResult:
        """Check (and repair) the qcow2 metadata."""
        r = ffi.new("vsm_image_check_result *")
        r.version = K.VSM_IMAGE_CHECK_RESULT_VERSION
        with self._lock:
            call(lib.vsm_image_check, r, self._ptr(), K.VSM_IMAGE_CHECK_REPAIR if repair else 0)
        return CheckResult(int(r.corruptions), int(r.leaks), int(r.corruptions_fixed),
                           int(r.leaks_fixed), int(r.allocated_clusters), int(r.image_end))

    def commit(self) -> None:
        """Write this image's data into its backing image, then empty it."""
        self._call(lib.vsm_image_commit, 0)

    def flatten(self) -> None:
        """Copy in what the chain reads and drop the backing reference."""
        self._call(lib.vsm_image_flatten, 0)

    def resize(self, size: int) -> None:
        """Grow the virtual size to @size bytes."""
        self._call(lib.vsm_image_resize, size, 0)

    @property
    def cid(self) -> Optional[str]:
        """The content ID of this layer, or None when it has none."""
        from .errors import NotFoundError
        out = ffi.new("char[]", K.VSM_IMAGE_CID_STRLEN + 1)
        try:
            self._call(lib.vsm_image_cid_get, out)
        except NotFoundError:
            return None
        return ffi.string(out).decode()

    def freeze(self) -> None:
        """Give the layer a content ID (unless it has one)."""
        self._call(lib.vsm_image_freeze, 0)

    # -- bitmaps
    def add_bitmap(self, name: str, *, granularity: int = 0, disabled: bool = False) -> None:
        """Add an empty persistent dirty bitmap @name."""
        opts = ffi.new("vsm_image_bitmap_opts *")
        opts.version = K.VSM_IMAGE_BITMAP_OPTS_VERSION
        opts.granularity = granularity
        opts.disabled = 1 if disabled else 0
        self._call(lib.vsm_image_bitmap_add, cstr(name), opts, 0)

    def remove_bitmap(self, name: str) -> None:
        """Remove bitmap @name."""
        self._call(lib.vsm_image_bitmap_remove, cstr(name), 0)

    def clear_bitmap(self, name: str) -> None:
        """Clear every bit of bitmap @name."""
        self._call(lib.vsm_image_bitmap_clear, cstr(name), 0)

    def enable_bitmap(self, name: str, enable: bool = True) -> None:
        """Enable (or disable) bitmap @name."""
        self._call(lib.vsm_image_bitmap_enable, cstr(name), 1 if enable else 0, 0)

    def bitmaps(self) -> List[Bitmap]:
        """The bitmaps of this image, in stored order."""
        out = ffi.new("vsm_image_bitmap_info **")
        n = ffi.new("size_t *")
        self._call_out(lib.vsm_image_bitmap_list, out, n)
        try:
            return [Bitmap(pystr(out[0][i].name) or "", int(out[0][i].granularity),
                           bool(out[0][i].enabled), bool(out[0][i].in_use)) for i in range(n[0])]
        finally:
            lib.vsm_image_bitmap_list_free(out[0], n[0])

    def bitmap_extents(self, name: str) -> List[Tuple[int, int]]:
        """(start, length) of the dirty ranges of bitmap @name."""
        out = ffi.new("vsm_image_extent **")
        n = ffi.new("size_t *")
        with self._lock:
            call(lib.vsm_image_bitmap_extents, out, n, self._ptr(), cstr(name))
        try:
            return [(int(out[0][i].start), int(out[0][i].length)) for i in range(n[0])]
        finally:
            lib.vsm_image_extent_list_free(out[0])


def _extent(e: Any) -> Extent:
    off = int(e.offset)
    return Extent(int(e.start), int(e.length), int(e.depth), bool(e.present), bool(e.data),
                  bool(e.zero), bool(e.compressed), None if off == 2**64 - 1 else off)


open = Image.open
