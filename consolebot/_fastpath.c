/* consolebot._fastpath: the capture's per-byte work in one C pass each, byte for byte what the Python code
 * it stands in for gives (tests/test_fastpath.py compares them on random and real input).
 *
 * log_lines(region, head) -> (bytes, int)
 *     transcript.log_lines_py: each line of ``region`` (complete lines: a CR run with or without an LF after
 *     it, or an LF, ends one) written as ``head`` + its text escaped (a backslash as two, a control byte but TAB
 *     as \xHH, a byte that is not part of valid UTF-8 as \xHH) + LF; and the number of lines.
 *
 * lookup(block, cache, nohit, canon[, line0, lead, skip_first]) -> (list, int, bool, list)
 *     classifier.lookup_py: the lines of ``block`` (ends as above), each looked up in ``cache`` by its key (its
 *     printk timestamps ``[ *\d+\.\d+\]`` replaced by ``[0.0]`` when ``canon``), and (index, line, key,
 *     entry or None) of each whose entry is not ``nohit``; the number of lines; whether a timestamp was seen;
 *     with ``line0`` (not None), the hits of the remembered lines that hold their text or ``lead`` (but the
 *     first line with ``skip_first``), which are then not in the first list.
 *
 * rx_lines(data, line, pending_cr, now) -> (bytes | None, int, bytes, bool)
 *     transcript.rx_lines_py: the log lines that received ``data`` completes, after the unended ``line`` before
 *     it (and a CR that ended the last read, ``pending_cr``), each headed with ``now`` (utc_iso) and "|"; their
 *     number; the line left unended; whether ``data`` ended with a CR.
 *
 * strip_escapes(data) -> bytes
 *     clean.strip_escapes_py: ``data`` without the escape sequences that clean._ANSI matches.
 *
 * event_lines(hits, start, line) -> bytes
 *     transcript.event_lines_py: the JSON line of each event: an unmade hit's from its template's JSON pieces,
 *     its line number and its leading timestamp; any other's from ``line(hit, start)`` (transcript.event_line).
 *
 * Optional: built when a C compiler and Python's headers are at hand (setup.py), else the Python code runs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <math.h>
#include <time.h>

static const char HEX[] = "0123456789abcdef";
static unsigned char LINE_END[256];  /* CR, LF */
static unsigned char WIDTH[256];  /* the most a byte takes in the log (255: a line end, which may start a line) */
static unsigned char SPECIAL[256];  /* what the log does not copy as it is: line ends, a backslash, controls but TAB, DEL, not ASCII */

/* the length of the valid UTF-8 sequence starting at p (its lead byte >= 0x80), or 0 when it is not one
 * (the sequences Python's UTF-8 decoder accepts: no overlong forms, no surrogates, nothing past U+10FFFF) */
static Py_ssize_t utf8_len(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    Py_ssize_t left = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return (left >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (left < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0;  /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0;  /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (left < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0;  /* past U+10FFFF */
        return 4;
    }
    return 0;
}

/* the most room the log lines of ``p`` .. ``end`` take (but the first head) */
static Py_ssize_t log_size(const unsigned char *p, const unsigned char *end, Py_ssize_t hlen) {
    Py_ssize_t size = 0;
    for (; p < end; p++) size += WIDTH[*p] == 255 ? hlen + 1 : WIDTH[*p];
    return size;
}

/* the log lines of the complete lines ``src`` .. ``end`` written at ``o`` (room: log_size): the end of what was
 * written; ``*at_start``: a head is due; ``*lines``: counted on */
static char *log_write(char *o, const unsigned char *src, const unsigned char *end, const char *head, Py_ssize_t hlen,
                       int *at_start, Py_ssize_t *lines) {
    const unsigned char *p = src;
    while (p < end) {
        if (*at_start) { memcpy(o, head, hlen); o += hlen; *at_start = 0; }
        const unsigned char *q = p;
        while (q < end && !SPECIAL[*q]) q++;  /* a run of bytes written as they are */
        memcpy(o, p, q - p);
        o += q - p;
        p = q;
        if (p == end) break;
        unsigned char c = *p;
        if (c == '\n' || c == '\r') {
            if (c == '\r') {
                while (p < end && *p == '\r') p++;
                if (p < end && *p == '\n') p++;
            } else {
                p++;
            }
            *o++ = '\n';
            (*lines)++;
            *at_start = 1;
            continue;
        }
        if (c == '\\') { *o++ = '\\'; *o++ = '\\'; p++; continue; }
        if (c >= 0x80) {
            Py_ssize_t n = utf8_len(p, end);
            if (n) { memcpy(o, p, n); o += n; p += n; continue; }
        }
        *o++ = '\\'; *o++ = 'x'; *o++ = HEX[c >> 4]; *o++ = HEX[c & 15];
        p++;
    }
    return o;
}

/* the log lines of the complete lines ``src`` as bytes (NULL: an error set), their number at ``*lines`` */
static PyObject *log_text(const unsigned char *src, Py_ssize_t len, const char *head, Py_ssize_t hlen,
                          Py_ssize_t *lines) {
    PyObject *out = PyBytes_FromStringAndSize(NULL, hlen + 1 + log_size(src, src + len, hlen));
    if (out == NULL) return NULL;
    int at_start = 1;  /* at the start of a line: its head is due */
    *lines = 0;
    char *o = log_write(PyBytes_AS_STRING(out), src, src + len, head, hlen, &at_start, lines);
    if (!at_start) *o++ = '\n';  /* a last line without its end (not expected): ended here */
    if (_PyBytes_Resize(&out, o - PyBytes_AS_STRING(out)) < 0) return NULL;
    return out;
}

static PyObject *log_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "log_lines(region: bytes, head: bytes)");
        return NULL;
    }
    Py_ssize_t lines;
    PyObject *out = log_text((const unsigned char *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]),
                             PyBytes_AS_STRING(args[1]), PyBytes_GET_SIZE(args[1]), &lines);
    if (out == NULL) return NULL;
    PyObject *count = PyLong_FromSsize_t(lines);
    if (count == NULL) { Py_DECREF(out); return NULL; }
    PyObject *result = PyTuple_Pack(2, out, count);
    Py_DECREF(out);
    Py_DECREF(count);
    return result;
}

/* utc_iso(t) + " | ": the head of a log line received at ``t`` (``*len``: its length), made once per millisecond */
static char HEAD[64];
static Py_ssize_t HEAD_LEN = 0;
static long long HEAD_MS = LLONG_MIN;

static const char *log_head(double t, Py_ssize_t *len) {
    double us_f = nearbyint(t * 1e6);  /* Python's round(): to the nearest, ties to even */
    long long us = (long long)us_f;
    long long sec = us / 1000000, frac = us % 1000000;
    if (frac < 0) { frac += 1000000; sec -= 1; }  /* divmod: towards minus infinity */
    long long ms = sec * 1000 + frac / 1000;
    if (ms != HEAD_MS) {
        time_t tt = (time_t)sec;
        struct tm tm;
        if (gmtime_r(&tt, &tm) == NULL) return NULL;
        int n = snprintf(HEAD, sizeof HEAD, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ | ", tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac / 1000);
        if (n <= 0 || n >= (int)sizeof HEAD) return NULL;
        HEAD_LEN = n;
        HEAD_MS = ms;
    }
    *len = HEAD_LEN;
    return HEAD;
}

/* rx_lines(data, line, pending_cr, now) -> (bytes | None, int, bytes, bool): see transcript.rx_lines_py */
static PyObject *rx_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "rx_lines(data: bytes, line: bytes, pending_cr: bool, now: float)");
        return NULL;
    }
    int pending_cr = PyObject_IsTrue(args[2]);
    if (pending_cr < 0) return NULL;
    PyObject *line = args[1];
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *end = p + PyBytes_GET_SIZE(args[0]);
    if (pending_cr) {  /* the last chunk ended with CR: more CRs, then one LF, continue that line end */
        while (p < end && *p == '\r') p++;
        if (p == end) return Py_BuildValue("(OiOO)", Py_None, 0, line, Py_True);
        pending_cr = 0;
        if (*p == '\n') p++;
    }
    if (p == end) return Py_BuildValue("(OiOO)", Py_None, 0, line, pending_cr ? Py_True : Py_False);
    const unsigned char *cut = end;  /* after the last line end */
    while (cut > p && !LINE_END[cut[-1]]) cut--;
    if (cut == p) {  /* no line end: the line goes on */
        PyObject *longer = PyBytes_FromStringAndSize(NULL, PyBytes_GET_SIZE(line) + (end - p));
        if (longer == NULL) return NULL;
        memcpy(PyBytes_AS_STRING(longer), PyBytes_AS_STRING(line), PyBytes_GET_SIZE(line));
        memcpy(PyBytes_AS_STRING(longer) + PyBytes_GET_SIZE(line), p, end - p);
        PyObject *result = Py_BuildValue("(OiNO)", Py_None, 0, longer, Py_False);
        return result;
    }
    if (cut == end && end[-1] == '\r') pending_cr = 1;
    double now = PyFloat_AsDouble(args[3]);  /* (an int too) */
    if (now == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t hlen;
    const char *head = log_head(now, &hlen);
    if (head == NULL) {
        PyErr_SetString(PyExc_ValueError, "rx_lines: a time out of range");
        return NULL;
    }
    Py_ssize_t lines, held = PyBytes_GET_SIZE(line);
    PyObject *text;
    if (held) {  /* the unended line, then the new bytes: one region (a UTF-8 sequence may span them) */
        unsigned char *joined = PyMem_Malloc(held + (cut - p));
        if (joined == NULL) return PyErr_NoMemory();
        memcpy(joined, PyBytes_AS_STRING(line), held);
        memcpy(joined + held, p, cut - p);
        text = log_text(joined, held + (cut - p), head, hlen, &lines);
        PyMem_Free(joined);
    } else {
        text = log_text(p, cut - p, head, hlen, &lines);
    }
    if (text == NULL) return NULL;
    PyObject *rest = PyBytes_FromStringAndSize((const char *)cut, end - cut);
    if (rest == NULL) { Py_DECREF(text); return NULL; }
    return Py_BuildValue("(NnNO)", text, lines, rest, pending_cr ? Py_True : Py_False);
}

/* a printk timestamp ``[ *\d+\.\d+\]`` starting at p ('['): its length, or 0 */
static Py_ssize_t stamp_len(const unsigned char *p, const unsigned char *end) {
    const unsigned char *q = p + 1;
    while (q < end && *q == ' ') q++;
    const unsigned char *d = q;
    while (q < end && *q >= '0' && *q <= '9') q++;
    if (q == d || q >= end || *q != '.') return 0;
    q++;
    d = q;
    while (q < end && *q >= '0' && *q <= '9') q++;
    if (q == d || q >= end || *q != ']') return 0;
    return q + 1 - p;
}

/* a remembered line's events as hits, appended to ``hits``: (line number, each template's attributes, the
 * line's leading timestamp as text or None); -1 on an error */
static int add_hits(PyObject *hits, PyObject *templates, Py_ssize_t number, PyObject *raw, int lead) {
    PyObject *stamp = Py_None;
    Py_INCREF(stamp);
    if (lead) {
        const char *s = PyBytes_AS_STRING(raw);
        const char *close = memchr(s, ']', PyBytes_GET_SIZE(raw));
        Py_DECREF(stamp);
        stamp = PyUnicode_DecodeASCII(s, close ? close + 1 - s : 0, "strict");
        if (stamp == NULL) return -1;
    }
    PyObject *n = PyLong_FromSsize_t(number);
    if (n == NULL) { Py_DECREF(stamp); return -1; }
    int failed = 0;
    for (Py_ssize_t k = 0; k < PyTuple_GET_SIZE(templates) && !failed; k++) {
        PyObject *template = PyTuple_GET_ITEM(templates, k);
        if (!PyTuple_Check(template) || PyTuple_GET_SIZE(template) != 3) {
            PyErr_SetString(PyExc_TypeError, "a template is (column, kind, attributes)");
            failed = 1;
            break;
        }
        PyObject *t = PyTuple_Pack(3, n, PyTuple_GET_ITEM(template, 2), stamp);
        failed = t == NULL || PyList_Append(hits, t) < 0;
        Py_XDECREF(t);
    }
    Py_DECREF(n);
    Py_DECREF(stamp);
    return failed ? -1 : 0;
}

static PyObject *lookup(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if ((nargs != 4 && nargs != 7) || !PyBytes_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "lookup(block: bytes, cache: dict, nohit, canon: bool[, line0: int | None, lead, skip_first])");
        return NULL;
    }
    PyObject *cache = args[1], *nohit = args[2];
    int canon = PyObject_IsTrue(args[3]);
    if (canon < 0) return NULL;
    /* with line0: remembered lines (their text, or ``lead``: their one leading timestamp) come out as hits */
    Py_ssize_t line0 = -1;
    PyObject *lead = NULL;
    int skip_first = 0;
    if (nargs == 7 && args[4] != Py_None) {
        line0 = PyLong_AsSsize_t(args[4]);
        if (line0 == -1 && PyErr_Occurred()) return NULL;
        lead = args[5];
        skip_first = PyObject_IsTrue(args[6]);
        if (skip_first < 0) return NULL;
    }
    PyObject *hits = PyList_New(0);
    if (hits == NULL) return NULL;
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    const unsigned char *end = src + PyBytes_GET_SIZE(args[0]);
    PyObject *found = PyList_New(0);
    char *scratch = PyMem_Malloc(end - src + 1);  /* a key is never longer than its line */
    if (scratch == NULL) PyErr_NoMemory();
    if (found == NULL || scratch == NULL) goto fail;
    Py_ssize_t index = 0;
    int stamped = 0;
    const unsigned char *p = src;
    while (p < end) {
        const unsigned char *line = p;
        const unsigned char *stop = p;
        while (stop < end && !LINE_END[*stop]) stop++;
        /* the line's key */
        Py_ssize_t klen = 0;
        int differs = 0;
        if (canon) {  /* (the key is made only when the line holds a timestamp that is not ``[0.0]``) */
            const unsigned char *q = line, *copied = line;
            while (q < stop && (q = memchr(q, '[', stop - q)) != NULL) {
                Py_ssize_t n = stamp_len(q, stop);
                if (n == 0) { q++; continue; }
                stamped = 1;
                if (n == 5 && memcmp(q, "[0.0]", 5) == 0) { q += 5; continue; }
                if (!differs) { klen = 0; copied = line; differs = 1; }
                memcpy(scratch + klen, copied, q - copied);
                klen += q - copied;
                memcpy(scratch + klen, "[0.0]", 5);
                klen += 5;
                q += n;
                copied = q;
            }
            if (differs) {
                memcpy(scratch + klen, copied, stop - copied);
                klen += stop - copied;
            }
        }
        PyObject *raw = NULL, *key;
        if (differs) {
            key = PyBytes_FromStringAndSize(scratch, klen);
        } else {
            raw = PyBytes_FromStringAndSize((const char *)line, stop - line);
            key = raw;
            Py_XINCREF(key);
        }
        if (key == NULL) { Py_XDECREF(raw); goto fail; }
        PyObject *entry = PyDict_GetItemWithError(cache, key);  /* borrowed: held while it is used */
        if (entry == NULL && PyErr_Occurred()) { Py_DECREF(key); Py_XDECREF(raw); goto fail; }
        PyObject *held = entry;
        Py_XINCREF(held);
        int remembered = 0;  /* 1: its events are hits; 2: it has none */
        if (lead != NULL && entry != NULL && entry != nohit && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 2
                && PyTuple_Check(PyTuple_GET_ITEM(entry, 0))) {
            PyObject *text = PyTuple_GET_ITEM(entry, 1);
            if (PyTuple_GET_SIZE(PyTuple_GET_ITEM(entry, 0)) == 0) remembered = 2;
            else if ((text == lead || PyUnicode_CheckExact(text)) && !(index == 0 && skip_first)) remembered = 1;
        }
        if (remembered == 1) {
            if (raw == NULL) raw = PyBytes_FromStringAndSize((const char *)line, stop - line);
            if (raw == NULL || add_hits(hits, PyTuple_GET_ITEM(entry, 0), line0 + index, raw,
                                        PyTuple_GET_ITEM(entry, 1) == lead) < 0) {
                Py_DECREF(key); Py_XDECREF(raw); Py_XDECREF(held); goto fail;
            }
        } else if (entry != nohit && remembered == 0) {
            if (raw == NULL) raw = PyBytes_FromStringAndSize((const char *)line, stop - line);
            PyObject *i = raw ? PyLong_FromSsize_t(index) : NULL;
            PyObject *t = i ? PyTuple_Pack(4, i, raw, key, entry ? entry : Py_None) : NULL;
            Py_XDECREF(i);
            int failed = t == NULL || PyList_Append(found, t) < 0;
            Py_XDECREF(t);
            if (failed) { Py_DECREF(key); Py_XDECREF(raw); Py_XDECREF(held); goto fail; }
        }
        Py_DECREF(key);
        Py_XDECREF(raw);
        Py_XDECREF(held);
        index++;
        /* the line end: a CR run with or without an LF after it, or an LF */
        p = stop;
        if (p < end && *p == '\r') {
            while (p < end && *p == '\r') p++;
            if (p < end && *p == '\n') p++;
        } else if (p < end) {
            p++;
        }
    }
    PyMem_Free(scratch);
    PyObject *count = PyLong_FromSsize_t(index);
    PyObject *result = count ? PyTuple_New(4) : NULL;
    if (result == NULL) { Py_DECREF(found); Py_DECREF(hits); Py_XDECREF(count); return NULL; }
    PyTuple_SET_ITEM(result, 0, found);
    PyTuple_SET_ITEM(result, 1, count);
    PyObject *seen = stamped ? Py_True : Py_False;
    Py_INCREF(seen);
    PyTuple_SET_ITEM(result, 2, seen);
    PyTuple_SET_ITEM(result, 3, hits);
    return result;
fail:
    PyMem_Free(scratch);
    Py_XDECREF(found);
    Py_DECREF(hits);
    return NULL;
}

/* the length of the escape sequence starting at p (an ESC), as clean._ANSI matches it there, or 0 */
static Py_ssize_t escape_len(const unsigned char *p, const unsigned char *end) {
    Py_ssize_t left = end - p;
    if (left >= 2) {
        unsigned char c = p[1];
        const unsigned char *q = p + 2;
        if (c == '[') {  /* CSI: parameters, intermediates, a final byte */
            while (q < end && *q >= 0x30 && *q <= 0x3F) q++;
            while (q < end && *q >= 0x20 && *q <= 0x2F) q++;
            return (q < end && *q >= 0x40 && *q <= 0x7E) ? q + 1 - p : 0;
        }
        if (c == ']') {  /* OSC, ended by BEL or ST (ESC \), or not */
            while (q < end && *q != 0x07 && *q != 0x1B && *q != '\r' && *q != '\n') q++;
            if (q < end && *q == 0x07) q++;
            else if (q + 1 < end && q[0] == 0x1B && q[1] == '\\') q += 2;
            return q - p;
        }
        if (c == 'P' || c == 'X' || c == '^' || c == '_') {  /* DCS, SOS, PM, APC, ended by ST or not */
            while (q < end && *q != 0x1B && *q != '\r' && *q != '\n') q++;
            if (q + 1 < end && q[0] == 0x1B && q[1] == '\\') q += 2;
            return q - p;
        }
        if (c == '(' || c == ')') {  /* a character set */
            if (left >= 3) {
                unsigned char d = p[2];
                if ((d >= '0' && d <= '9') || (d >= 'A' && d <= 'Z') || (d >= 'a' && d <= 'z')) return 3;
            }
            return 0;
        }
        if ((c >= '@' && c <= 'Z') || (c >= 0x5C && c <= 0x5F) || (c >= '0' && c <= '9') || c == '=' || c == '<'
                || c == '>')
            return 2;  /* two bytes: ESC 7, ESC 8, ESC =, ESC c ... */
    }
    /* an ESC at the very end (or before a last LF: ``$``) */
    return (left == 1 || (left == 2 && p[1] == '\n')) ? 1 : 0;
}

static PyObject *strip_escapes(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyBytes_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "strip_escapes(data: bytes)");
        return NULL;
    }
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(arg);
    Py_ssize_t len = PyBytes_GET_SIZE(arg);
    const unsigned char *end = src + len, *p = memchr(src, 0x1B, len);
    if (p == NULL) {
        Py_INCREF(arg);
        return arg;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, len);
    if (out == NULL) return NULL;
    char *o = PyBytes_AS_STRING(out);
    memcpy(o, src, p - src);
    o += p - src;
    while (p < end) {
        if (*p == 0x1B) {
            Py_ssize_t n = escape_len(p, end);
            if (n) { p += n; continue; }
        }
        *o++ = (char)*p++;
    }
    if (_PyBytes_Resize(&out, o - PyBytes_AS_STRING(out)) < 0) return NULL;
    return out;
}

/* a growing output buffer */
typedef struct { char *buf; Py_ssize_t len, cap; } Out;

static int out_add(Out *o, const char *s, Py_ssize_t n) {
    if (o->len + n > o->cap) {
        Py_ssize_t cap = (o->cap + n) * 2;
        char *buf = PyMem_Realloc(o->buf, cap);
        if (buf == NULL) { PyErr_NoMemory(); return -1; }
        o->buf = buf;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

/* an ASCII str's text into ``o``: 1 done, 0 not an ASCII str (the caller gives up), -1 an error */
static int out_ascii(Out *o, PyObject *text) {
    if (text == NULL || !PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) return 0;
    return out_add(o, (const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)) < 0 ? -1 : 1;
}

static PyObject *K_JPRE, *K_JPOST, *K_JTAIL, *K_JSON_TAIL;

static PyObject *event_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "event_lines(hits: list, start: str, line: callable)");
        return NULL;
    }
    PyObject *hits = args[0], *start = args[1], *line_of = args[2];
    Out o = {NULL, 0, 0};
    char number[32];
    for (Py_ssize_t k = 0; k < PyList_GET_SIZE(hits); k++) {
        PyObject *hit = PyList_GET_ITEM(hits, k);
        int r = 0;  /* 1: written here; 0: by ``line``; -1: an error */
        if (PyTuple_CheckExact(hit) && PyTuple_GET_SIZE(hit) == 3) {
            PyObject *n = PyTuple_GET_ITEM(hit, 0), *attrs = PyTuple_GET_ITEM(hit, 1);
            PyObject *made = PyTuple_GET_ITEM(hit, 2);
            if (PyLong_CheckExact(n) && PyDict_CheckExact(attrs) && (made == Py_None || PyUnicode_CheckExact(made))) {
                Py_ssize_t mark = o.len;
                long line = PyLong_AsLong(n);
                if (line == -1 && PyErr_Occurred()) goto fail;
                r = out_ascii(&o, start);
                if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JPRE));
                if (r == 1) {
                    int len = snprintf(number, sizeof number, "%ld, ", line);
                    r = out_add(&o, number, len) < 0 ? -1 : 1;
                }
                if (made == Py_None) {
                    if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JPOST));
                } else {
                    if (r == 1) r = out_add(&o, "\"text\": \"", 9) < 0 ? -1 : 1;
                    if (r == 1) r = out_ascii(&o, made);
                    if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JTAIL));
                    if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JSON_TAIL));
                }
                if (r == 1) r = out_add(&o, "\n", 1) < 0 ? -1 : 1;
                if (r < 0 || PyErr_Occurred()) goto fail;
                if (r == 0) o.len = mark;  /* not as expected: ``line`` writes it */
            }
        }
        if (r == 0) {  /* an event that was made (or anything else): its line from Python */
            Py_INCREF(hit);  /* (held: Python code runs) */
            PyObject *text = PyObject_CallFunctionObjArgs(line_of, hit, start, NULL);
            Py_DECREF(hit);
            if (text == NULL) goto fail;
            Py_ssize_t len;
            const char *utf8 = PyUnicode_Check(text) ? PyUnicode_AsUTF8AndSize(text, &len) : NULL;
            if (utf8 == NULL) {
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "line() gives a str");
                Py_DECREF(text);
                goto fail;
            }
            int added = out_add(&o, utf8, len);
            Py_DECREF(text);
            if (added < 0) goto fail;
        }
    }
    PyObject *result = PyBytes_FromStringAndSize(o.buf ? o.buf : "", o.len);
    PyMem_Free(o.buf);
    return result;
fail:
    PyMem_Free(o.buf);
    return NULL;
}

static PyMethodDef methods[] = {
    {"log_lines", (PyCFunction)(void (*)(void))log_lines, METH_FASTCALL, "The log lines of a region of complete console lines, and their number."},
    {"rx_lines", (PyCFunction)(void (*)(void))rx_lines, METH_FASTCALL,
     "The log lines a read completes, with the line and line end it leaves open (transcript.rx_lines_py)."},
    {"event_lines", (PyCFunction)(void (*)(void))event_lines, METH_FASTCALL,
     "The JSON lines of a read's events (transcript.event_lines_py)."},
    {"strip_escapes", strip_escapes, METH_O, "The bytes without their ANSI escape sequences (clean.strip_escapes)."},
    {"lookup", (PyCFunction)(void (*)(void))lookup, METH_FASTCALL, "The lines of a block looked up in a classifier's line memory."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", "consolebot's capture hot path in C.", -1,
                                    methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__fastpath(void) {
    for (int c = 0; c < 256; c++) {
        LINE_END[c] = c == '\r' || c == '\n';
        SPECIAL[c] = !((c >= 0x20 && c < 0x7F && c != '\\') || c == '\t');
        WIDTH[c] = LINE_END[c] ? 255 : c == '\\' ? 2 : SPECIAL[c] ? 4 : 1;
    }
    K_JPRE = PyUnicode_InternFromString("_jpre");
    K_JPOST = PyUnicode_InternFromString("_jpost");
    K_JTAIL = PyUnicode_InternFromString("_jtail");
    K_JSON_TAIL = PyUnicode_InternFromString("json_tail");
    if (K_JPRE == NULL || K_JPOST == NULL || K_JTAIL == NULL || K_JSON_TAIL == NULL) return NULL;
    return PyModule_Create(&module);
}
