/* Optional accelerator of the RIB conversion's hot loop (rvcloud.converter_worker._ribfast).
 *
 * rib_run() does what mrt.decoder._rib_run + avro_fast.RibFastPath.__call__ do for the
 * common TABLE_DUMP_V2 RIB_IPV4/IPV6_UNICAST/MULTICAST record (no ADD-PATH): frame the
 * records of a run, render the prefix text, look each entry's raw attribute blob up in
 * the Python dict of already-encoded attribute-set bytes, and append the assembled Avro
 * rows to the writer's ``parts``. A blob not in the cache is handed to the Python
 * callback ``miss`` (avro_fast.encode_rib_attrs + the cache insertion); a record is
 * handled here only when every one of its entries is in bounds, has a known peer and a
 * blob that is cached or that ``miss`` could encode; any other record (unusual
 * attributes, damage, overrun, impossible prefix length ...) is handed
 * whole to the Python callback ``slow``, which runs RibFastPath.__call__ with the
 * decoder's exception handling, so every note, skip and counter stays in Python.
 * Every read from ``buf`` is bounds-checked against the record end and the buffer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <stdio.h>

#define HEADER_LEN 12
#define LOOKAHEAD (HEADER_LEN + 4 + HEADER_LEN)
#define T_TABLE_DUMP_V2 13

/* ---- growable output buffer ---------------------------------------------------------- */

typedef struct {
    char *p;
    Py_ssize_t len, cap;
} obuf;

static int ob_reserve(obuf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap)
        return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra)
        cap *= 2;
    char *np = PyMem_Realloc(b->p, (size_t)cap);
    if (!np) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = np;
    b->cap = cap;
    return 0;
}

/* Avro long: zigzag + base-128 varint (at most 10 bytes). Caller reserved space. */
static inline void ob_zz(obuf *b, int64_t n) {
    uint64_t z = ((uint64_t)n << 1) ^ (uint64_t)(n >> 63);
    char *o = b->p + b->len;
    while (z > 0x7F) {
        *o++ = (char)((z & 0x7F) | 0x80);
        z >>= 7;
    }
    *o++ = (char)z;
    b->len = o - b->p;
}

static inline void ob_put(obuf *b, const char *s, Py_ssize_t n) {
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
}

static inline uint32_t be32(const unsigned char *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}
static inline uint16_t be16(const unsigned char *p) { return (uint16_t)((p[0] << 8) | p[1]); }

/* ---- prefix text (nlri.prefix_text) ----------------------------------------------------- */

/* IPv6 text as ipaddress.IPv6Address(...).compressed: lower-case hextets without leading
 * zeros, the first longest run of >= 2 zero hextets replaced by "::". Returns length. */
static int ipv6_text(const unsigned char a[16], char *out) {
    unsigned h[8];
    for (int i = 0; i < 8; i++)
        h[i] = ((unsigned)a[2 * i] << 8) | a[2 * i + 1];
    int best = -1, bestlen = 0, cur = -1, curlen = 0;
    for (int i = 0; i < 8; i++) {
        if (h[i] == 0) {
            if (cur < 0)
                cur = i;
            curlen++;
            if (curlen > bestlen) {
                bestlen = curlen;
                best = cur;
            }
        } else {
            cur = -1;
            curlen = 0;
        }
    }
    if (bestlen < 2)
        best = -1;
    char *o = out;
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            *o++ = ':';
            if (i == 0)
                *o++ = ':';
            i += bestlen - 1;
            continue;
        }
        o += sprintf(o, "%x", h[i]);
        if (i < 7)
            *o++ = ':';
    }
    return (int)(o - out);
}

/* Canonical "addr/len" of the nb = ceil(plen/8) bytes at raw, host bits masked. */
static int prefix_text(int v4, unsigned plen, const unsigned char *raw, char *out) {
    unsigned char a[16] = {0};
    unsigned nb = (plen + 7) >> 3;
    memcpy(a, raw, nb);
    if (plen & 7)
        a[nb - 1] &= (unsigned char)(0xFF << (8 - (plen & 7)));
    int n;
    if (v4)
        n = sprintf(out, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    else
        n = ipv6_text(a, out);
    n += sprintf(out + n, "/%u", plen);
    return n;
}


/* ---- attribute sets of the common kinds (avro_fast.encode_rib_attrs) ------------------- */

static inline int ob_str(obuf *b, const char *s, Py_ssize_t n) { /* Avro string */
    if (ob_reserve(b, n + 10) < 0)
        return -1;
    ob_zz(b, n);
    ob_put(b, s, n);
    return 0;
}

static inline int ob_nstr(obuf *b, const char *s, Py_ssize_t n) { /* union [null, string], string */
    if (ob_reserve(b, 1) < 0)
        return -1;
    b->p[b->len++] = 2;
    return ob_str(b, s, n);
}

static inline int ob_byte(obuf *b, char c) {
    if (ob_reserve(b, 1) < 0)
        return -1;
    b->p[b->len++] = c;
    return 0;
}

static inline int ob_long(obuf *b, int64_t v) {
    if (ob_reserve(b, 10) < 0)
        return -1;
    ob_zz(b, v);
    return 0;
}

/* Address text of a 4- or 16-byte address (nlri.ip_text). */
static int addr_text(const unsigned char *a, int n, char *out) {
    if (n == 4)
        return sprintf(out, "%u.%u.%u.%u", a[0], a[1], a[2], a[3]);
    return ipv6_text(a, out);
}

typedef struct {
    const unsigned char *p; /* NULL: None */
    int n;                  /* 4 or 16 */
} addr;

/* attributes._next_hop; -1 for the lengths it rejects. */
static int mp_next_hop(const unsigned char *nh, int n, addr *hop, addr *ll) {
    hop->p = ll->p = NULL;
    switch (n) {
    case 4: hop->p = nh; hop->n = 4; return 0;
    case 16: hop->p = nh; hop->n = 16; return 0;
    case 32: hop->p = nh; hop->n = 16; ll->p = nh + 16; ll->n = 16; return 0;
    case 12: hop->p = nh + 8; hop->n = 4; return 0;
    case 24: hop->p = nh + 8; hop->n = 16; return 0;
    case 48: hop->p = nh + 8; hop->n = 16; ll->p = nh + 32; ll->n = 16; return 0;
    case 0: return 0;
    default: return -1;
    }
}

static int ob_addr(obuf *b, const addr *a) { /* nullable string column */
    if (!a->p)
        return ob_byte(b, 0);
    char t[48];
    int n = addr_text(a->p, a->n, t);
    return ob_nstr(b, t, n);
}

/* Avro array of long, as _long_list. */
static int ob_asn_list(obuf *b, const uint32_t *v, Py_ssize_t n) {
    if (n == 0)
        return ob_byte(b, 0);
    if (ob_reserve(b, 10 + 10 * n + 1) < 0)
        return -1;
    ob_zz(b, n);
    for (Py_ssize_t i = 0; i < n; i++)
        ob_zz(b, v[i]);
    b->p[b->len++] = 0;
    return 0;
}

/* The attribute-set part of a route, byte for byte what encode_rib_attrs returns, into
 * out (cleared first). Returns 1 when encoded, 0 when this code does not handle the blob
 * (encode_rib_attrs then decides: it may still encode it or return None), -1 on error. */
static int encode_attrs(obuf *out, const unsigned char *raw, Py_ssize_t end, int v4) {
    uint8_t seen[32] = {0};
    const unsigned char *nh = NULL, *path = NULL, *mpv = NULL, *comm = NULL, *large = NULL;
    const unsigned char *aggv = NULL;
    int nhlen = 0, pathlen = -1, mplen = 0, commlen = 0, largelen = 0, agglen = 0;
    int origin = -1, atomic = 0;
    int64_t med = -1, lp = -1;
    Py_ssize_t p = 0;
    out->len = 0;
    while (p < end) {
        if (p + 3 > end)
            return 0;
        unsigned flags = raw[p], typ = raw[p + 1];
        Py_ssize_t alen;
        if (flags & 0x10) {
            if (p + 4 > end)
                return 0;
            alen = be16(raw + p + 2);
            p += 4;
        } else {
            alen = raw[p + 2];
            p += 3;
        }
        Py_ssize_t q = p + alen;
        if (q > end || (seen[typ >> 3] & (1 << (typ & 7))))
            return 0;
        seen[typ >> 3] |= (uint8_t)(1 << (typ & 7));
        const unsigned char *v = raw + p;
        p = q;
        switch (typ) {
        case 1:
            if (alen != 1 || v[0] > 2)
                return 0;
            origin = v[0];
            break;
        case 2:
            path = v;
            pathlen = (int)alen;
            break;
        case 3:
            if (alen != 4 && alen != 16)
                return 0;
            nh = v;
            nhlen = (int)alen;
            break;
        case 4:
        case 5:
            if (alen != 4)
                return 0;
            if (typ == 4)
                med = be32(v);
            else
                lp = be32(v);
            break;
        case 6:
            atomic = 1;
            break;
        case 7:
            if (alen != 6 && alen != 8)
                return 0;
            aggv = v;
            agglen = (int)alen;
            break;
        case 8:
            if (alen % 4)
                return 0;
            comm = v;
            commlen = (int)alen;
            break;
        case 14:
            mpv = v;
            mplen = (int)alen;
            if (mplen == 0) /* _mp_reach: too short */
                return 0;
            break;
        case 32:
            if (alen % 12)
                return 0;
            large = v;
            largelen = (int)alen;
            break;
        default:
            return 0;
        }
    }
    /* MP_REACH (attributes._mp_reach) */
    addr mph = {NULL, 0}, mpl = {NULL, 0};
    if (mpv) {
        int n = mplen;
        if (n >= 1 && mpv[0] == n - 1) {
            if (mp_next_hop(mpv + 1, n - 1, &mph, &mpl) < 0)
                return 0;
        } else {
            if (n < 5)
                return 0;
            int l = mpv[3], q = 4 + l;
            if (q + 1 > n)
                return 0;
            if (mp_next_hop(mpv + 4, l, &mph, &mpl) < 0)
                return 0;
            int snpas = mpv[q];
            q++;
            for (int i = 0; i < snpas; i++) {
                if (q >= n)
                    return 0;
                q += 1 + (mpv[q] + 1) / 2;
            }
            if (q > n)
                return 0;
        }
    }
    /* AS_PATH (aspath.parse_segments with 4-byte ASNs): validate, count */
    Py_ssize_t nasn = 0;
    if (path) {
        int q = 0;
        while (q < pathlen) {
            if (q + 2 > pathlen)
                return 0;
            int st = path[q], n = path[q + 1];
            if (st < 1 || st > 4)
                return 0;
            if (q + 2 + 4 * n > pathlen)
                return 0;
            nasn += n;
            q += 2 + 4 * n;
        }
    }
    /* next_hop, next_hop_link_local */
    if (mpv && (!v4 || !nh)) {
        if (ob_addr(out, &mph) < 0 || ob_addr(out, &mpl) < 0)
            return -1;
    } else if (nh) {
        addr a = {nh, nhlen};
        if (ob_addr(out, &a) < 0 || ob_byte(out, 0) < 0)
            return -1;
    } else {
        if (ob_byte(out, 0) < 0 || ob_byte(out, 0) < 0)
            return -1;
    }
    /* as_path, as_path_asns, origin_asns */
    if (path) {
        uint32_t *asns = PyMem_Malloc(sizeof(uint32_t) * (size_t)(nasn ? nasn : 1));
        char *text = PyMem_Malloc((size_t)(nasn * 12 + (pathlen / 2 + 1) * 3 + 1));
        if (!asns || !text) {
            PyMem_Free(asns);
            PyMem_Free(text);
            PyErr_NoMemory();
            return -1;
        }
        static const char open_[5] = {0, '{', 0, '(', '['}, close_[5] = {0, '}', 0, ')', ']'};
        static const char sep[5] = {0, ',', ' ', ' ', ','};
        Py_ssize_t k = 0, tl = 0, last_start = 0, last_n = 0;
        int last_type = 0;
        int q = 0;
        while (q < pathlen) {
            int st = path[q], n = path[q + 1];
            const unsigned char *a = path + q + 2;
            q += 2 + 4 * n;
            if (n == 0)
                continue;
            if (tl)
                text[tl++] = ' ';
            if (open_[st])
                text[tl++] = open_[st];
            last_start = k;
            last_n = n;
            last_type = st;
            for (int i = 0; i < n; i++) {
                uint32_t x = be32(a + 4 * i);
                asns[k++] = x;
                if (i)
                    text[tl++] = sep[st];
                tl += sprintf(text + tl, "%u", x);
            }
            if (close_[st])
                text[tl++] = close_[st];
        }
        int rc = ob_nstr(out, text, tl);
        if (!rc)
            rc = ob_asn_list(out, asns, k);
        if (!rc) {
            if (last_n == 0)
                rc = ob_asn_list(out, asns, 0);
            else if (last_type == 1 || last_type == 4)
                rc = ob_asn_list(out, asns + last_start, last_n);
            else
                rc = ob_asn_list(out, asns + last_start + last_n - 1, 1);
        }
        PyMem_Free(asns);
        PyMem_Free(text);
        if (rc < 0)
            return -1;
    } else {
        if (ob_reserve(out, 3) < 0)
            return -1;
        ob_put(out, "\0\0\0", 3);
    }
    /* origin */
    if (origin < 0) {
        if (ob_byte(out, 0) < 0)
            return -1;
    } else {
        static const char *names[3] = {"IGP", "EGP", "INCOMPLETE"};
        if (ob_nstr(out, names[origin], (Py_ssize_t)strlen(names[origin])) < 0)
            return -1;
    }
    /* local_pref, med */
    int64_t lm[2] = {lp, med};
    for (int i = 0; i < 2; i++) {
        if (lm[i] < 0) {
            if (ob_byte(out, 0) < 0)
                return -1;
        } else if (ob_byte(out, 2) < 0 || ob_long(out, lm[i]) < 0) {
            return -1;
        }
    }
    /* communities, large_communities */
    char t[40];
    if (!comm || commlen == 0) {
        if (ob_byte(out, 0) < 0)
            return -1;
    } else {
        if (ob_long(out, commlen / 4) < 0)
            return -1;
        for (int i = 0; i < commlen; i += 4) {
            uint32_t c = be32(comm + i);
            int n = sprintf(t, "%u:%u", c >> 16, c & 0xFFFF);
            if (ob_str(out, t, n) < 0)
                return -1;
        }
        if (ob_byte(out, 0) < 0)
            return -1;
    }
    if (!large || largelen == 0) {
        if (ob_byte(out, 0) < 0)
            return -1;
    } else {
        if (ob_long(out, largelen / 12) < 0)
            return -1;
        for (int i = 0; i < largelen; i += 12) {
            int n = sprintf(t, "%u:%u:%u", be32(large + i), be32(large + i + 4), be32(large + i + 8));
            if (ob_str(out, t, n) < 0)
                return -1;
        }
        if (ob_byte(out, 0) < 0)
            return -1;
    }
    /* extended_communities (none), atomic_aggregate, aggregator_asn + aggregator_ip */
    if (ob_byte(out, 0) < 0 || ob_byte(out, atomic ? 1 : 0) < 0)
        return -1;
    if (!aggv) {
        if (ob_byte(out, 0) < 0 || ob_byte(out, 0) < 0)
            return -1;
    } else {
        uint32_t asn = agglen == 6 ? be16(aggv) : be32(aggv);
        const unsigned char *ip = aggv + (agglen == 6 ? 2 : 4);
        int n = sprintf(t, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
        if (ob_byte(out, 2) < 0 || ob_long(out, asn) < 0 || ob_nstr(out, t, n) < 0)
            return -1;
    }
    /* only_to_customer, originator_id, cluster_list, unknown_attributes */
    if (ob_reserve(out, 4) < 0)
        return -1;
    ob_put(out, "\0\0\0\0", 4);
    return 1;
}

/* ---- the writer (AvroContainerWriter / parallel._BlockCollector) ------------------------ */

typedef struct {
    PyObject *get_writer; /* () -> writer, creates it on first use */
    PyObject *w;          /* owned, NULL when not attached */
    PyObject *parts;      /* owned list */
    Py_ssize_t rows;
    Py_ssize_t block_rows;
} sink;

static PyObject *s_parts, *s_rows, *s_flush_block;

static int sink_attach(sink *s) {
    PyObject *w = PyObject_CallNoArgs(s->get_writer);
    if (!w)
        return -1;
    PyObject *parts = PyObject_GetAttr(w, s_parts);
    PyObject *r = parts ? PyObject_GetAttr(w, s_rows) : NULL;
    Py_ssize_t rows = r ? PyLong_AsSsize_t(r) : -1;
    Py_XDECREF(r);
    if (!parts || (rows == -1 && PyErr_Occurred()) || !PyList_Check(parts)) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "writer.parts is not a list");
        Py_XDECREF(parts);
        Py_DECREF(w);
        return -1;
    }
    s->w = w;
    s->parts = parts;
    s->rows = rows;
    return 0;
}

/* Write the row count back and let go of the writer (before Python code runs). */
static int sink_detach(sink *s) {
    int rc = 0;
    if (s->w) {
        PyObject *r = PyLong_FromSsize_t(s->rows);
        if (!r || PyObject_SetAttr(s->w, s_rows, r) < 0)
            rc = -1;
        Py_XDECREF(r);
    }
    Py_CLEAR(s->parts);
    Py_CLEAR(s->w);
    return rc;
}

/* Append the rows of one record (n rows in data[0:len]). */
static int sink_add(sink *s, const char *data, Py_ssize_t len, Py_ssize_t n) {
    if (!s->w && sink_attach(s) < 0)
        return -1;
    PyObject *b = PyBytes_FromStringAndSize(data, len);
    if (!b)
        return -1;
    int rc = PyList_Append(s->parts, b);
    Py_DECREF(b);
    if (rc < 0)
        return -1;
    s->rows += n;
    if (s->rows >= s->block_rows) {
        PyObject *w = s->w;
        Py_INCREF(w);
        if (sink_detach(s) < 0) {
            Py_DECREF(w);
            return -1;
        }
        PyObject *r = PyObject_CallMethodNoArgs(w, s_flush_block);
        Py_DECREF(w);
        if (!r)
            return -1;
        Py_DECREF(r);
    }
    return 0;
}

/* ---- rib_run -------------------------------------------------------------------------- */

/* Plausible (type << 16 | subtype) keys (framing.PLAUSIBLE_KEYS), set by configure(),
 * kept sorted for a binary search. */
static uint32_t *pkeys = NULL;
static Py_ssize_t npkeys = 0;
static uint32_t max_record_len = 0;
static int configured = 0;

static int key_plausible(uint32_t key) {
    Py_ssize_t lo = 0, hi = npkeys;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        if (pkeys[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < npkeys && pkeys[lo] == key;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static PyObject *configure(PyObject *self, PyObject *args) {
    PyObject *keys;
    unsigned long maxlen;
    if (!PyArg_ParseTuple(args, "Ok", &keys, &maxlen))
        return NULL;
    PyObject *seq = PySequence_Fast(keys, "keys must be iterable");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    uint32_t *k = PyMem_Malloc(sizeof(uint32_t) * (size_t)(n ? n : 1));
    if (!k) {
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long v = PyLong_AsUnsignedLong(PySequence_Fast_GET_ITEM(seq, i));
        if (v == (unsigned long)-1 && PyErr_Occurred()) {
            PyMem_Free(k);
            Py_DECREF(seq);
            return NULL;
        }
        k[i] = (uint32_t)v;
    }
    Py_DECREF(seq);
    qsort(k, (size_t)n, sizeof(uint32_t), cmp_u32);
    PyMem_Free(pkeys);
    pkeys = k;
    npkeys = n;
    max_record_len = (uint32_t)maxlen;
    configured = 1;
    Py_RETURN_NONE;
}

/* One record at buf[start:end]: its rows into ob (cleared first). Returns the number of
 * rows, 0 when the record must go to the Python path. */
static Py_ssize_t fast_record(obuf *ob, obuf *ab, Py_ssize_t cache_limit, const unsigned char *buf, Py_ssize_t start, Py_ssize_t end,
                              int v4, PyObject *afisafi, PyObject *cache, PyObject *miss, PyObject *peers,
                              int64_t ts_us, int64_t idx, int64_t off) {
    ob->len = 0;
    if (start + 5 > end)
        return 0;
    unsigned plen = buf[start + 4];
    if (plen > (v4 ? 32u : 128u))
        return 0;
    Py_ssize_t p = start + 5;
    unsigned nb = (plen + 7) >> 3;
    if (p + nb + 2 > end)
        return 0;
    char pfx[64];
    int pl = prefix_text(v4, plen, buf + p, pfx);
    p += nb;
    unsigned count = be16(buf + p);
    p += 2;
    if (count == 0)
        return 0;
    Py_ssize_t npeers = PyList_GET_SIZE(peers);
    const char *as = PyBytes_AS_STRING(afisafi);
    Py_ssize_t aslen = PyBytes_GET_SIZE(afisafi);
    for (unsigned i = 0; i < count; i++) {
        if (p + 8 > end)
            return 0;
        unsigned pi = be16(buf + p);
        uint32_t ot = be32(buf + p + 2);
        unsigned alen = be16(buf + p + 6);
        p += 8;
        Py_ssize_t q = p + alen;
        if (q > end || (Py_ssize_t)pi >= npeers)
            return 0;
        PyObject *key = PyBytes_FromStringAndSize((const char *)buf + p, alen);
        if (!key)
            return -1;
        PyObject *attr = PyDict_GetItemWithError(cache, key);
        if (attr) {
            Py_INCREF(attr);
        } else if (PyErr_Occurred()) {
            Py_DECREF(key);
            return -1;
        } else {
            /* Not encoded yet. The common attribute kinds are encoded here (cached with
             * RibFastPath.__call__'s policy); for anything else Python's encode_rib_attrs
             * decides (``miss``), and if it cannot encode the blob either (None), the whole
             * record takes the Python path. */
            int rc = cache_limit >= 0 ? encode_attrs(ab, (const unsigned char *)buf + p, alen, v4) : 0;
            if (rc < 0) {
                Py_DECREF(key);
                return -1;
            }
            if (rc > 0) {
                attr = PyBytes_FromStringAndSize(ab->p, ab->len);
                if (attr && PyDict_GET_SIZE(cache) >= cache_limit)
                    PyDict_Clear(cache);
                if (!attr || PyDict_SetItem(cache, key, attr) < 0) {
                    Py_XDECREF(attr);
                    Py_DECREF(key);
                    return -1;
                }
            } else {
                attr = PyObject_CallFunctionObjArgs(miss, cache, key, v4 ? Py_True : Py_False, NULL);
                if (!attr) {
                    Py_DECREF(key);
                    return -1;
                }
            }
        }
        Py_DECREF(key);
        if (!PyBytes_Check(attr)) {
            Py_DECREF(attr);
            return 0;
        }
        p = q;
        PyObject *peer = PyList_GET_ITEM(peers, pi);
        if (!PyBytes_Check(peer)) {
            Py_DECREF(attr);
            return 0;
        }
        Py_ssize_t need = 10 + 1 + 10 + PyBytes_GET_SIZE(peer) + 1 + 10 + pl + 1 + aslen +
                          PyBytes_GET_SIZE(attr) + 2 + 10 + 10;
        if (ob_reserve(ob, need) < 0) {
            Py_DECREF(attr);
            return -1;
        }
        /* timestamp, originated_time (union branch 1) */
        ob_zz(ob, ts_us);
        ob->p[ob->len++] = 2;
        ob_zz(ob, (int64_t)ot * 1000000);
        /* project, collector, source_file, elem_type, peer_ip, peer_asn */
        ob_put(ob, PyBytes_AS_STRING(peer), PyBytes_GET_SIZE(peer));
        /* prefix (union branch 1), path_id null, afi, safi */
        ob->p[ob->len++] = 2;
        ob_zz(ob, pl);
        ob_put(ob, pfx, pl);
        ob->p[ob->len++] = 0;
        ob_put(ob, as, aslen);
        /* the attribute-set columns */
        ob_put(ob, PyBytes_AS_STRING(attr), PyBytes_GET_SIZE(attr));
        Py_DECREF(attr);
        /* old_state, new_state null; record_index, record_offset */
        ob->p[ob->len++] = 0;
        ob->p[ob->len++] = 0;
        ob_zz(ob, idx);
        ob_zz(ob, off);
    }
    return count;
}

PyDoc_STRVAR(rib_run_doc,
             "rib_run(ctx, buf, pos, base, idx, sub, eof, v4, afisafi, cache, cache_limit, miss, peer_bytes, "
             "slow, "
             "get_writer, block_rows)\n"
             "-> (pos, idx, records, records with rows, rows, timestamp of the last record)\n\n"
             "decoder._rib_run for a RibFastPath hook of a non-ADD-PATH RIB subtype.");

static PyObject *rib_run(PyObject *self, PyObject *args) {
    PyObject *ctx, *bufobj, *afisafi, *cache, *miss, *peers, *slow, *get_writer;
    Py_ssize_t pos, base, idx, block_rows, cache_limit;
    int sub, eof, v4;
    if (!PyArg_ParseTuple(args, "OOnnnippO!O!nOO!OOn", &ctx, &bufobj, &pos, &base, &idx, &sub, &eof, &v4,
                          &PyBytes_Type, &afisafi, &PyDict_Type, &cache, &cache_limit, &miss, &PyList_Type, &peers, &slow,
                          &get_writer, &block_rows))
        return NULL;
    if (!configured) {
        PyErr_SetString(PyExc_RuntimeError, "_ribfast.configure() not called");
        return NULL;
    }
    if (pos < 0 || base < 0 || idx < 0) {
        PyErr_SetString(PyExc_ValueError, "negative position or index");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(bufobj, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    Py_INCREF(afisafi);
    Py_INCREF(cache);
    Py_INCREF(peers);
    const unsigned char *buf = view.buf;
    Py_ssize_t blen = view.len;
    obuf ob = {NULL, 0, 0}, ab = {NULL, 0, 0};
    sink s = {get_writer, NULL, NULL, 0, block_rows};
    Py_ssize_t n = 0, with_rows = 0, nrows = 0;
    uint32_t last_ts = 0;
    int failed = 0;
    while (pos + HEADER_LEN <= blen) {
        const unsigned char *h = buf + pos;
        uint32_t ts = be32(h), ln = be32(h + 8);
        unsigned typ = be16(h + 4), sub2 = be16(h + 6);
        if (typ != T_TABLE_DUMP_V2 || (int)sub2 != sub || ln > max_record_len)
            break;
        Py_ssize_t end = pos + HEADER_LEN + (Py_ssize_t)ln;
        if (end + LOOKAHEAD > blen && !(eof && end <= blen))
            break;
        if (end + HEADER_LEN <= blen) {
            const unsigned char *h2 = buf + end;
            uint32_t nln = be32(h2 + 8);
            uint32_t key = ((uint32_t)be16(h2 + 4) << 16) | be16(h2 + 6);
            if (nln > max_record_len || !key_plausible(key))
                break;
        }
        Py_ssize_t off = base + pos;
        int64_t ts_us = (int64_t)ts * 1000000;
        Py_ssize_t r = fast_record(&ob, &ab, cache_limit, buf, pos + HEADER_LEN, end, v4, afisafi, cache, miss, peers, ts_us, idx,
                                   off);
        if (r < 0) {
            failed = 1;
            break;
        }
        if (r > 0) {
            if (sink_add(&s, ob.p, ob.len, r) < 0) {
                failed = 1;
                break;
            }
            with_rows++;
            nrows += r;
        } else {
            if (sink_detach(&s) < 0) {
                failed = 1;
                break;
            }
            PyObject *res = PyObject_CallFunction(slow, "OOnniLnn", ctx, bufobj, pos + HEADER_LEN, end, sub,
                                                  (long long)ts_us, idx, off);
            if (!res) {
                failed = 1;
                break;
            }
            Py_ssize_t k = PyLong_AsSsize_t(res);
            Py_DECREF(res);
            if (k == -1 && PyErr_Occurred()) {
                failed = 1;
                break;
            }
            if (k > 0) {
                with_rows++;
                nrows += k;
            }
        }
        n++;
        idx++;
        pos = end;
        last_ts = ts;
        if ((n & 255) == 0) {
            /* Let the other threads run (the decompression prefetch thread needs the GIL
             * between chunks, the deflate thread between blocks): a whole run would
             * otherwise hold it for tens of milliseconds. Nothing here is shared with them. */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
        }
    }
    if (sink_detach(&s) < 0)
        failed = 1;
    PyMem_Free(ob.p);
    PyMem_Free(ab.p);
    Py_DECREF(afisafi);
    Py_DECREF(cache);
    Py_DECREF(peers);
    PyBuffer_Release(&view);
    if (failed)
        return NULL;
    return Py_BuildValue("nnnnnk", pos, idx, n, with_rows, nrows, (unsigned long)last_ts);
}

PyDoc_STRVAR(rib_frame_doc,
             "rib_frame(buf, pos, sub, eof) -> (pos, records, timestamp of the last record)\n\n"
             "decoder._rib_frame: frames the same run of TABLE_DUMP_V2 RIB records.");

static PyObject *rib_frame(PyObject *self, PyObject *args) {
    Py_buffer view;
    Py_ssize_t pos;
    int sub, eof;
    if (!PyArg_ParseTuple(args, "y*nip", &view, &pos, &sub, &eof))
        return NULL;
    if (!configured || pos < 0) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, configured ? "negative position" : "configure() not called");
        return NULL;
    }
    const unsigned char *buf = view.buf;
    Py_ssize_t blen = view.len, n = 0, prev = pos;
    uint32_t last_ts = 0, prev_ts = 0;
    while (pos + HEADER_LEN <= blen) {
        const unsigned char *h = buf + pos;
        uint32_t ts = be32(h), ln = be32(h + 8);
        unsigned typ = be16(h + 4), sub2 = be16(h + 6);
        if (typ != T_TABLE_DUMP_V2 || (int)sub2 != sub || ln > max_record_len) {
            if (n && (ln > max_record_len || !key_plausible(((uint32_t)typ << 16) | sub2))) {
                PyBuffer_Release(&view);
                return Py_BuildValue("nnk", prev, n - 1, (unsigned long)prev_ts);
            }
            break;
        }
        Py_ssize_t end = pos + HEADER_LEN + (Py_ssize_t)ln;
        if (end + LOOKAHEAD > blen && !(eof && end <= blen))
            break;
        prev = pos;
        prev_ts = last_ts;
        n++;
        pos = end;
        last_ts = ts;
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("nnk", pos, n, (unsigned long)last_ts);
}

PyDoc_STRVAR(prefix_text_doc, "prefix_text(v4, plen, raw) -> str (nlri.prefix_text, for tests)");

static PyObject *py_prefix_text(PyObject *self, PyObject *args) {
    int v4;
    unsigned plen;
    Py_buffer raw;
    if (!PyArg_ParseTuple(args, "pIy*", &v4, &plen, &raw))
        return NULL;
    if (plen > (v4 ? 32u : 128u) || raw.len < (Py_ssize_t)((plen + 7) >> 3)) {
        PyBuffer_Release(&raw);
        PyErr_SetString(PyExc_ValueError, "bad prefix");
        return NULL;
    }
    char out[64];
    int n = prefix_text(v4, plen, raw.buf, out);
    PyBuffer_Release(&raw);
    return PyUnicode_FromStringAndSize(out, n);
}

PyDoc_STRVAR(encode_rib_attrs_doc,
             "encode_rib_attrs(raw, v4) -> bytes | None: avro_fast.encode_rib_attrs for the blobs this "
             "code handles, None for the others (for tests)");

static PyObject *py_encode_rib_attrs(PyObject *self, PyObject *args) {
    Py_buffer raw;
    int v4;
    if (!PyArg_ParseTuple(args, "y*p", &raw, &v4))
        return NULL;
    obuf ab = {NULL, 0, 0};
    int rc = encode_attrs(&ab, raw.buf, raw.len, v4);
    PyBuffer_Release(&raw);
    PyObject *r = NULL;
    if (rc > 0)
        r = PyBytes_FromStringAndSize(ab.p, ab.len);
    else if (rc == 0)
        r = Py_NewRef(Py_None);
    PyMem_Free(ab.p);
    return r;
}

static PyMethodDef methods[] = {
    {"encode_rib_attrs", py_encode_rib_attrs, METH_VARARGS, encode_rib_attrs_doc},
    {"rib_run", rib_run, METH_VARARGS, rib_run_doc},
    {"rib_frame", rib_frame, METH_VARARGS, rib_frame_doc},
    {"configure", configure, METH_VARARGS, "configure(plausible_keys, max_record_len)"},
    {"prefix_text", py_prefix_text, METH_VARARGS, prefix_text_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "_ribfast", "C accelerator of the RIB conversion (optional).", -1, methods,
};

PyMODINIT_FUNC PyInit__ribfast(void) {
    s_parts = PyUnicode_InternFromString("parts");
    s_rows = PyUnicode_InternFromString("rows");
    s_flush_block = PyUnicode_InternFromString("flush_block");
    if (!s_parts || !s_rows || !s_flush_block)
        return NULL;
    return PyModule_Create(&moddef);
}
