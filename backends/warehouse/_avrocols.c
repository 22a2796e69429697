/* Optional accelerator of the embedded warehouse's Avro reads (rvcloud.backends.warehouse._avrocols).
 *
 * decode() turns the decompressed data of one or more Avro container blocks written with
 * OUR row schema (mrt.schema.avro_schema: a flat record of long / int / string / boolean /
 * arrays of long or string, scalars optionally as the union ["null", T]) into Arrow
 * column buffers, which backends/warehouse/avro_columns.py wraps with
 * pa.Array.from_buffers without copying. It replaces a generic reader (polars) + casts
 * that cost more than the whole MRT conversion.
 *
 * The input comes from object storage and may be damaged: every read is bounds-checked
 * against the end of its block, counts are capped by the bytes left before anything is
 * allocated for them, strings are checked to be UTF-8 (Arrow requires it), and a block
 * must end exactly where its last record ends. Any failure raises DecodeError (a
 * ValueError) naming the block (index within this call), the byte offset in the block's
 * data and the column.
 * The decoding itself runs without the GIL.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { T_TIMESTAMP = 0, T_INT64, T_INT32, T_STRING, T_BOOL, T_INT64_LIST, T_STRING_LIST, T_NTYPES };
#define SPEC_NULLABLE 0x80
#define SPEC_TYPE 0x7F

/* Arrow's string and list offsets here are int32: a batch may not hold more. */
#define MAX_OFFSET INT32_MAX

/* ---- owned memory exposed through the buffer protocol -------------------------------- */

/* pa.py_buffer() keeps a reference to this object and reads the memory in place, so the
 * column buffers reach Arrow without a copy; the memory is freed with the last reference. */
typedef struct {
    PyObject_HEAD
    uint8_t *p;
    Py_ssize_t len;
} BufferObject;

static void Buffer_dealloc(BufferObject *self) {
    free(self->p);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Buffer_getbuffer(BufferObject *self, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)self, self->p, self->len, 1, flags);
}

static Py_ssize_t Buffer_len(BufferObject *self) { return self->len; }

static PyBufferProcs Buffer_as_buffer = {(getbufferproc)Buffer_getbuffer, NULL};
static PySequenceMethods Buffer_as_sequence = {.sq_length = (lenfunc)Buffer_len};

static PyTypeObject BufferType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rvcloud.backends.warehouse._avrocols.Buffer",
    .tp_basicsize = sizeof(BufferObject),
    .tp_dealloc = (destructor)Buffer_dealloc,
    .tp_as_buffer = &Buffer_as_buffer,
    .tp_as_sequence = &Buffer_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Memory of one decoded Arrow buffer (read-only buffer protocol).",
};

/* ---- growable buffers (malloc, no GIL needed) ------------------------------------------ */

typedef struct {
    uint8_t *p;
    size_t len, cap;
} buf_t;

static int buf_reserve(buf_t *b, size_t extra) {
    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return -1;
    size_t need = b->len + extra;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need)
        cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
        return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

/* Zero-filled, exactly n bytes (at least 1, so Arrow never sees a NULL data pointer). */
static int buf_zeroed(buf_t *b, size_t n) {
    b->p = calloc(n ? n : 1, 1);
    if (!b->p)
        return -1;
    b->len = n;
    b->cap = n ? n : 1;
    return 0;
}

/* Hands the memory to a new Buffer object (b is emptied). NULL + exception on failure. */
static PyObject *buf_take(buf_t *b) {
    BufferObject *o = PyObject_New(BufferObject, &BufferType);
    if (!o)
        return NULL;
    if (!b->p) {
        b->p = malloc(1);
        b->cap = 1;
        if (!b->p) {
            o->p = NULL;
            Py_DECREF(o);
            return PyErr_NoMemory();
        }
    } else if (b->cap - b->len > 65536) {
        /* Doubling leaves up to half of a large buffer unused; give it back. */
        uint8_t *p = realloc(b->p, b->len ? b->len : 1);
        if (p)
            b->p = p;
    }
    o->p = b->p;
    o->len = (Py_ssize_t)b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return (PyObject *)o;
}

/* ---- columns ------------------------------------------------------------------------- */

typedef struct {
    int type;
    int nullable;
    buf_t validity;  /* bitmap, nullable columns only */
    buf_t values;    /* int64 / int32 values, bool bitmap, or int32 offsets (string, lists) */
    buf_t data;      /* string bytes; int64 list items; string list item offsets (int32) */
    buf_t data2;     /* string list item bytes */
    int64_t nulls;
    int64_t nitems;  /* list items so far */
} col_t;

static void col_free(col_t *k) {
    free(k->validity.p);
    free(k->values.p);
    free(k->data.p);
    free(k->data2.p);
    memset(k, 0, sizeof *k);
}

/* ---- the decoder --------------------------------------------------------------------- */

/* The read position is a local variable of decode_block (passed by value to the inlined
 * readers, which return the new position or NULL on error): kept in a register it makes
 * the loop about twice as fast as a position kept in a struct. Errors are rare, so their
 * details go through `e` only on the failure path. */
typedef struct {
    const char *why;
    const uint8_t *at;
    int nomem;
} err_t;

static const uint8_t *fail(err_t *e, const uint8_t *at, const char *why) {
    e->why = why;
    e->at = at;
    return NULL;
}

/* Avro long: base-128 varint (at most 10 bytes, no bits beyond 64) then zigzag. */
static inline const uint8_t *rd_long(const uint8_t *p, const uint8_t *end, int64_t *out, err_t *e) {
    if (p < end && !(*p & 0x80)) {
        uint64_t v = *p;
        *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
        return p + 1;
    }
    uint64_t v = 0;
    int shift = 0;
    for (;;) {
        if (p >= end)
            return fail(e, p, "truncated varint");
        uint8_t b = *p++;
        if (shift == 63 && b > 1)
            return fail(e, p - 1, "varint overflows 64 bits");
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80))
            break;
        shift += 7;
    }
    *out = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    return p;
}

/* Arrow (like Python) accepts only well-formed UTF-8: no overlongs, surrogates or > U+10FFFF. */
static int utf8_full(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return 0;
        if (need > n - i - 1)
            return 0;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return 0;
        for (size_t j = 2; j <= need; j++)
            if ((s[i + j] & 0xC0) != 0x80)
                return 0;
        i += need + 1;
    }
    return 1;
}

/* Copies n bytes src -> dst and tells whether they were all ASCII, 8 bytes at a time (our
 * strings are short and nearly all ASCII; memcpy + a separate check cost twice as much).
 * The tail is one 8-byte load when the block has 8 bytes there (never past src_end) and
 * one 8-byte store: dst must have 8 bytes of room beyond n. */
static inline int copy_ascii(uint8_t *dst, const uint8_t *src, size_t n, const uint8_t *src_end) {
    uint64_t acc = 0, w;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, src + i, 8);
        memcpy(dst + i, &w, 8);
        acc |= w;
    }
    if (i < n) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        if ((size_t)(src_end - (src + i)) >= 8) {
            memcpy(&w, src + i, 8);
            w &= ((uint64_t)1 << (8 * (n - i))) - 1; /* the bytes of this string only */
            memcpy(dst + i, &w, 8);
            acc |= w;
            i = n;
        }
#else
        (void)src_end;
#endif
        for (; i < n; i++) {
            dst[i] = src[i];
            acc |= src[i];
        }
    }
    return !(acc & 0x8080808080808080ULL);
}

/* One Avro string: length then bytes, appended to `data`; the new end offset in *endoff. */
static inline const uint8_t *rd_string(const uint8_t *p, const uint8_t *end, buf_t *data, int32_t *endoff,
                                       err_t *e) {
    int64_t n;
    const uint8_t *at = p;
    if (!(p = rd_long(p, end, &n, e)))
        return NULL;
    if (n < 0)
        return fail(e, at, "negative string length");
    if ((uint64_t)n > (uint64_t)(end - p))
        return fail(e, at, "string runs past the end of the block");
    if ((uint64_t)n > (uint64_t)MAX_OFFSET - data->len)
        return fail(e, at, "over 2 GiB of string data in one batch");
    if (buf_reserve(data, (size_t)n + 8) < 0) {
        e->nomem = 1;
        return fail(e, at, "out of memory");
    }
    if (!copy_ascii(data->p + data->len, p, (size_t)n, end) && !utf8_full(p, (size_t)n))
        return fail(e, p, "string is not valid UTF-8");
    data->len += (size_t)n;
    *endoff = (int32_t)data->len;
    return p + n;
}

/* An Avro array of long or string: blocks of (count, [byte size if count < 0], items), 0 ends. */
static const uint8_t *rd_list(const uint8_t *p, const uint8_t *end, col_t *k, err_t *e) {
    for (;;) {
        int64_t n;
        const uint8_t *at = p;
        if (!(p = rd_long(p, end, &n, e)))
            return NULL;
        if (n == 0)
            return p;
        const uint8_t *items = NULL;
        int64_t size = 0;
        if (n < 0) {
            if (n == INT64_MIN)
                return fail(e, at, "array block count out of range");
            n = -n;
            const uint8_t *at_size = p;
            if (!(p = rd_long(p, end, &size, e)))
                return NULL;
            if (size < 0 || (uint64_t)size > (uint64_t)(end - p))
                return fail(e, at_size, "array block byte size out of range");
            items = p;
        }
        /* Every item takes at least one byte: a larger count is damage, and must not
         * size an allocation. */
        if ((uint64_t)n > (uint64_t)(end - p))
            return fail(e, at, "array block count exceeds the bytes left in the block");
        if ((uint64_t)n > (uint64_t)(MAX_OFFSET - k->nitems))
            return fail(e, at, "over 2^31 list items in one batch");
        if (k->type == T_INT64_LIST) {
            if (buf_reserve(&k->data, (size_t)n * 8) < 0) {
                e->nomem = 1;
                return fail(e, at, "out of memory");
            }
            int64_t *out = (int64_t *)(void *)(k->data.p + k->data.len);
            for (int64_t i = 0; i < n; i++)
                if (!(p = rd_long(p, end, &out[i], e)))
                    return NULL;
            k->data.len += (size_t)n * 8;
        } else {
            if (buf_reserve(&k->data, (size_t)n * 4) < 0) {
                e->nomem = 1;
                return fail(e, at, "out of memory");
            }
            int32_t *offs = (int32_t *)(void *)(k->data.p + k->data.len);
            for (int64_t i = 0; i < n; i++)
                if (!(p = rd_string(p, end, &k->data2, &offs[i], e)))
                    return NULL;
            k->data.len += (size_t)n * 4;
        }
        k->nitems += n;
        if (items && p - items != size)
            return fail(e, items, "array block byte size does not match its items");
    }
}

/* Decodes the `count` records of one block's data [start, end) into rows [row, row + count)
 * of every column. On failure returns -1 with e->why / e->at set and *col the column being
 * decoded (-1: none). */
static int decode_block(const uint8_t *start, const uint8_t *end, col_t *cols, int ncols, int64_t row,
                        int64_t count, err_t *e, int *col) {
    const uint8_t *p = start;
    for (int64_t r = row; r < row + count; r++) {
        for (int c = 0; c < ncols; c++) {
            col_t *k = &cols[c];
            const uint8_t *at = p;
            if (k->nullable) {
                int64_t branch;
                if (!(p = rd_long(p, end, &branch, e)))
                    goto failed;
                if (branch == 0) {
                    /* NULL: the value slot stays zero; a string repeats its offset. */
                    k->nulls++;
                    if (k->type == T_STRING) {
                        int32_t *o = (int32_t *)(void *)k->values.p;
                        o[r + 1] = o[r];
                    }
                    continue;
                }
                if (branch != 1) {
                    fail(e, at, "union branch is neither 0 (null) nor 1");
                    goto failed;
                }
                k->validity.p[r >> 3] |= (uint8_t)(1u << (r & 7));
            }
            switch (k->type) {
            case T_TIMESTAMP:
            case T_INT64:
                if (!(p = rd_long(p, end, &((int64_t *)(void *)k->values.p)[r], e)))
                    goto failed;
                break;
            case T_INT32: {
                int64_t v;
                if (!(p = rd_long(p, end, &v, e)))
                    goto failed;
                if (v < INT32_MIN || v > INT32_MAX) {
                    fail(e, at, "int out of the 32-bit range");
                    goto failed;
                }
                ((int32_t *)(void *)k->values.p)[r] = (int32_t)v;
                break;
            }
            case T_BOOL:
                if (p >= end) {
                    fail(e, p, "truncated boolean");
                    goto failed;
                }
                if (*p > 1) {
                    fail(e, p, "boolean byte is neither 0 nor 1");
                    goto failed;
                }
                if (*p)
                    k->values.p[r >> 3] |= (uint8_t)(1u << (r & 7));
                p++;
                break;
            case T_STRING:
                if (!(p = rd_string(p, end, &k->data, &((int32_t *)(void *)k->values.p)[r + 1], e)))
                    goto failed;
                break;
            default: /* T_INT64_LIST, T_STRING_LIST */
                if (p < end && *p == 0) /* most lists are empty */
                    p++;
                else if (!(p = rd_list(p, end, k, e)))
                    goto failed;
                ((int32_t *)(void *)k->values.p)[r + 1] = (int32_t)k->nitems;
                break;
            }
            continue;
        failed:
            *col = c;
            return -1;
        }
    }
    *col = -1;
    if (p != end) {
        fail(e, p, "block data continues after its last record");
        return -1;
    }
    return 0;
}

/* ---- Python entry point ---------------------------------------------------------------- */

static PyObject *DecodeError;

/* DecodeError(message) with the parts as attributes, so the caller can name the block by
 * its number in the file: block (index in this call), offset (in the block's data),
 * column (name or None), reason. */
static void raise_decode(const char *reason, int block, size_t off, PyObject *column) {
    PyObject *msg = column == Py_None
                        ? PyUnicode_FromFormat("block %d, byte %zu of its data: %s", block, off, reason)
                        : PyUnicode_FromFormat("block %d, byte %zu of its data, column %R: %s", block, off,
                                               column, reason);
    if (!msg)
        return;
    PyObject *exc = PyObject_CallOneArg(DecodeError, msg);
    Py_DECREF(msg);
    if (!exc)
        return;
    PyObject *b = PyLong_FromLong(block), *o = PyLong_FromSize_t(off), *r = PyUnicode_FromString(reason);
    if (b && o && r && PyObject_SetAttrString(exc, "block", b) == 0 &&
        PyObject_SetAttrString(exc, "offset", o) == 0 && PyObject_SetAttrString(exc, "column", column) == 0 &&
        PyObject_SetAttrString(exc, "reason", r) == 0)
        PyErr_SetObject(DecodeError, exc);
    Py_XDECREF(b);
    Py_XDECREF(o);
    Py_XDECREF(r);
    Py_DECREF(exc);
}

PyDoc_STRVAR(decode_doc,
"decode(blocks, counts, spec, names, /) -> list[tuple]\n\n"
"Decode the decompressed data of Avro blocks (a list of bytes-like objects; counts: the\n"
"record count of each) of a flat record schema into Arrow buffers, one tuple per column:\n"
"(null_count, validity, values, data, data2, list_items). spec holds one byte per column:\n"
"type code (0 timestamp, 1 int64, 2 int32, 3 string, 4 bool, 5 int64 list, 6 string\n"
"list) | 0x80 for the union [\"null\", T]; names (a tuple of str) name the columns in\n"
"errors. Buffers are Buffer objects (buffer protocol) or None. Damaged data raises\n"
"DecodeError (a ValueError) naming the block index, the byte offset in its data and the column.");

static PyObject *decode(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *blocks, *counts, *names;
    Py_buffer spec;
    if (!PyArg_ParseTuple(args, "O!O!y*O!:decode", &PyList_Type, &blocks, &PyList_Type, &counts, &spec,
                          &PyTuple_Type, &names))
        return NULL;
    PyObject *result = NULL;
    col_t *cols = NULL;
    Py_buffer *views = NULL;
    int64_t *nrec = NULL;
    Py_ssize_t nviews = 0;
    int ncols = (int)spec.len;
    Py_ssize_t nblocks = PyList_GET_SIZE(blocks);

    if (spec.len < 1 || spec.len > 4096 || PyTuple_GET_SIZE(names) != spec.len) {
        PyErr_SetString(PyExc_ValueError, "spec must have one byte per name (1..4096 columns)");
        goto done;
    }
    if (PyList_GET_SIZE(counts) != nblocks) {
        PyErr_SetString(PyExc_ValueError, "blocks and counts differ in length");
        goto done;
    }
    cols = calloc((size_t)ncols, sizeof *cols);
    views = calloc((size_t)nblocks + 1, sizeof *views);
    nrec = calloc((size_t)nblocks + 1, sizeof *nrec);
    if (!cols || !views || !nrec) {
        PyErr_NoMemory();
        goto done;
    }
    for (int c = 0; c < ncols; c++) {
        uint8_t s = ((const uint8_t *)spec.buf)[c];
        cols[c].type = s & SPEC_TYPE;
        cols[c].nullable = (s & SPEC_NULLABLE) != 0;
        if (cols[c].type >= T_NTYPES || (cols[c].nullable && cols[c].type >= T_INT64_LIST)) {
            PyErr_Format(PyExc_ValueError, "unsupported type code 0x%02x for column %d", s, c);
            goto done;
        }
    }
    /* Counts first: each record takes at least one byte per column, so a count the data
     * cannot hold is damage and must not size the column buffers. */
    int64_t total = 0;
    for (Py_ssize_t b = 0; b < nblocks; b++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(blocks, b), &views[b], PyBUF_SIMPLE) < 0)
            goto done;
        nviews++;
        long long n = PyLong_AsLongLong(PyList_GET_ITEM(counts, b));
        if (n == -1 && PyErr_Occurred())
            goto done;
        if (n < 0 || (unsigned long long)n > (unsigned long long)views[b].len / (unsigned)ncols) {
            char msg[160];
            snprintf(msg, sizeof msg, "record count %lld does not fit in %zd bytes of data", n, views[b].len);
            raise_decode(msg, (int)b, 0, Py_None);
            goto done;
        }
        nrec[b] = n;
        total += n;
        if (total > MAX_OFFSET - 1) {
            PyErr_SetString(PyExc_ValueError, "over 2^31 records in one batch");
            goto done;
        }
    }
    for (int c = 0; c < ncols; c++) {
        col_t *k = &cols[c];
        size_t n = (size_t)total;
        int err = 0;
        if (k->nullable)
            err |= buf_zeroed(&k->validity, (n + 7) / 8);
        switch (k->type) {
        case T_TIMESTAMP:
        case T_INT64:
            err |= buf_zeroed(&k->values, n * 8);
            break;
        case T_INT32:
            err |= buf_zeroed(&k->values, n * 4);
            break;
        case T_BOOL:
            err |= buf_zeroed(&k->values, (n + 7) / 8);
            break;
        case T_STRING:
        case T_INT64_LIST:
            err |= buf_zeroed(&k->values, (n + 1) * 4);
            break;
        case T_STRING_LIST:
            err |= buf_zeroed(&k->values, (n + 1) * 4);
            err |= buf_zeroed(&k->data, 4); /* item offsets start with 0 */
            break;
        }
        if (err) {
            PyErr_NoMemory();
            goto done;
        }
    }

    err_t e;
    memset(&e, 0, sizeof e);
    int failed = 0, col = -1;
    Py_ssize_t fblock = 0;
    Py_BEGIN_ALLOW_THREADS
    int64_t row = 0;
    for (Py_ssize_t b = 0; b < nblocks; b++) {
        const uint8_t *start = views[b].buf;
        if (decode_block(start, start + views[b].len, cols, ncols, row, nrec[b], &e, &col) < 0) {
            failed = 1;
            fblock = b;
            e.at = e.at ? e.at : start;
            break;
        }
        row += nrec[b];
    }
    Py_END_ALLOW_THREADS
    if (failed) {
        if (e.nomem)
            PyErr_NoMemory();
        else
            raise_decode(e.why, (int)fblock, (size_t)(e.at - (const uint8_t *)views[fblock].buf),
                         col >= 0 ? PyTuple_GET_ITEM(names, col) : Py_None);
        goto done;
    }

    result = PyList_New(ncols);
    if (!result)
        goto done;
    for (int c = 0; c < ncols; c++) {
        col_t *k = &cols[c];
        PyObject *bufs[4] = {NULL, NULL, NULL, NULL};
        buf_t *src[4] = {k->nullable ? &k->validity : NULL, &k->values,
                         (k->type == T_STRING || k->type >= T_INT64_LIST) ? &k->data : NULL,
                         k->type == T_STRING_LIST ? &k->data2 : NULL};
        int err = 0;
        for (int i = 0; i < 4; i++) {
            if (!src[i] || (i == 0 && k->nulls == 0)) {
                bufs[i] = Py_NewRef(Py_None);
            } else if (!(bufs[i] = buf_take(src[i]))) {
                err = 1;
            }
        }
        PyObject *t = err ? NULL
                          : Py_BuildValue("(LOOOOL)", (long long)k->nulls, bufs[0], bufs[1], bufs[2], bufs[3],
                                          (long long)k->nitems);
        for (int i = 0; i < 4; i++)
            Py_XDECREF(bufs[i]);
        if (!t) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, c, t);
    }

done:
    for (Py_ssize_t b = 0; b < nviews; b++)
        PyBuffer_Release(&views[b]);
    if (cols)
        for (int c = 0; c < ncols; c++)
            col_free(&cols[c]);
    free(cols);
    free(views);
    free(nrec);
    PyBuffer_Release(&spec);
    return result;
}

static PyMethodDef methods[] = {
    {"decode", decode, METH_VARARGS, decode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_avrocols",
    "C decoder of the row model's Avro blocks into Arrow buffers (optional accelerator).", -1, methods,
};

PyMODINIT_FUNC PyInit__avrocols(void) {
    if (PyType_Ready(&BufferType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    DecodeError = PyErr_NewExceptionWithDoc(
        "rvcloud.backends.warehouse._avrocols.DecodeError",
        "Damaged Avro block data; attributes block, offset, column (or None) and reason.", PyExc_ValueError,
        NULL);
    if (!DecodeError || PyModule_AddObjectRef(m, "DecodeError", DecodeError) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&BufferType);
    if (PyModule_AddObject(m, "Buffer", (PyObject *)&BufferType) < 0) {
        Py_DECREF(&BufferType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
