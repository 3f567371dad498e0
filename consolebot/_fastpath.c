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
 * read_lines(pending, data, cache, nohit, canon, line0, lead, skip_first) -> (list, int, bool, list, bytes)
 *     classifier.read_lines_py: the complete lines of ``pending`` + ``data`` (up to the last line end that is not
 *     a CR run at the very end), their escapes stripped, looked up as ``lookup`` does; and what is left after them.
 *
 * strip_escapes(data) -> bytes
 *     clean.strip_escapes_py: ``data`` without the escape sequences that clean._ANSI matches.
 *
 * event_lines(hits, start, line) -> bytes
 *     transcript.event_lines_py: the JSON line of each event: an unmade hit's from its template's JSON pieces,
 *     its line number and its one timestamp; any other's from ``line(hit, start)`` (transcript.event_line).
 *
 * timeline_feed(timeline, hits) -> None
 *     timeline.Timeline.feed_all_py: the events (as hits) counted in the timeline's boots, its phases moved on,
 *     its boots started and ended (a new one made by ``timeline._new_boot(line)``), with its _take's steps.
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

/* ``a`` then ``b`` in one buffer of PyMem_Malloc's (NULL: out of memory, the error set) */
static unsigned char *join(const char *a, Py_ssize_t alen, const unsigned char *b, Py_ssize_t blen) {
    unsigned char *out = PyMem_Malloc(alen + blen ? alen + blen : 1);
    if (out == NULL) { PyErr_NoMemory(); return NULL; }
    memcpy(out, a, alen);
    memcpy(out + alen, b, blen);
    return out;
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
        unsigned char *joined = join(PyBytes_AS_STRING(line), held, p, cut - p);
        if (joined == NULL) return NULL;
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

static PyObject *K_AT;  /* "_at" */

/* a remembered line's events as hits, appended to ``hits``: (line number, each template's attributes, the
 * line's one timestamp as text or None); -1 on an error */
static int add_hits(PyObject *hits, PyObject *templates, Py_ssize_t number, PyObject *raw, int lead) {
    PyObject *stamp = Py_None;
    Py_INCREF(stamp);
    if (lead) {  /* the line's one timestamp: where it begins is the first template's ``_at`` - 5 */
        PyObject *first = PyTuple_GET_SIZE(templates) ? PyTuple_GET_ITEM(templates, 0) : NULL;
        PyObject *attrs = first && PyTuple_Check(first) && PyTuple_GET_SIZE(first) == 3 ? PyTuple_GET_ITEM(first, 2)
                                                                                          : NULL;
        PyObject *at_o = attrs && PyDict_Check(attrs) ? PyDict_GetItemWithError(attrs, K_AT) : NULL;
        Py_ssize_t at = at_o ? PyLong_AsSsize_t(at_o) - 5 : -1;
        Py_DECREF(stamp);
        if (at < 0 || at >= PyBytes_GET_SIZE(raw)) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "a remembered line's timestamp is not where its template says");
            return -1;
        }
        const char *s = PyBytes_AS_STRING(raw) + at;
        const char *close = memchr(s, ']', PyBytes_GET_SIZE(raw) - at);
        if (close == NULL) {
            PyErr_SetString(PyExc_ValueError, "a remembered line's timestamp is not where its template says");
            return -1;
        }
        stamp = PyUnicode_DecodeASCII(s, close + 1 - s, "strict");
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

/* lookup's work on the lines ``src`` .. ``end``: (found, lines, stamped, hits) */
static PyObject *lookup_core(const unsigned char *src, const unsigned char *end, PyObject *cache, PyObject *nohit,
                             int canon, Py_ssize_t line0, PyObject *lead, int skip_first) {
    PyObject *hits = PyList_New(0);
    if (hits == NULL) return NULL;
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

/* lookup's optional arguments: line0 (-1: None), lead, skip_first; -1 on an error */
static int lookup_options(PyObject *const *args, Py_ssize_t *line0, PyObject **lead, int *skip_first) {
    *line0 = -1;
    *lead = NULL;
    *skip_first = 0;
    if (args[0] == Py_None) return 0;
    *line0 = PyLong_AsSsize_t(args[0]);
    if (*line0 == -1 && PyErr_Occurred()) return -1;
    *lead = args[1];
    *skip_first = PyObject_IsTrue(args[2]);
    return *skip_first < 0 ? -1 : 0;
}

static PyObject *lookup(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if ((nargs != 4 && nargs != 7) || !PyBytes_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError,
                        "lookup(block: bytes, cache: dict, nohit, canon: bool[, line0: int | None, lead, skip_first])");
        return NULL;
    }
    int canon = PyObject_IsTrue(args[3]);
    if (canon < 0) return NULL;
    /* with line0: remembered lines (their text, or ``lead``: their one timestamp) come out as hits */
    Py_ssize_t line0 = -1;
    PyObject *lead = NULL;
    int skip_first = 0;
    if (nargs == 7 && lookup_options(args + 4, &line0, &lead, &skip_first) < 0) return NULL;
    const unsigned char *src = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    return lookup_core(src, src + PyBytes_GET_SIZE(args[0]), args[1], args[2], canon, line0, lead, skip_first);
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
/* read_lines(pending, data, cache, nohit, canon, line0, lead, skip_first) -> (found, lines, stamped, hits, rest):
 * classifier.read_lines_py */
static PyObject *read_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 8 || !PyBytes_Check(args[0]) || !PyBytes_Check(args[1]) || !PyDict_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "read_lines(pending: bytes, data: bytes, cache: dict, nohit, canon: bool, "
                                         "line0: int | None, lead, skip_first: bool)");
        return NULL;
    }
    int canon = PyObject_IsTrue(args[4]);
    if (canon < 0) return NULL;
    Py_ssize_t line0;
    PyObject *lead;
    int skip_first;
    if (lookup_options(args + 5, &line0, &lead, &skip_first) < 0) return NULL;
    Py_ssize_t plen = PyBytes_GET_SIZE(args[0]), dlen = PyBytes_GET_SIZE(args[1]), len = plen + dlen;
    unsigned char *joined = NULL, *stripped = NULL;
    const unsigned char *buf = (const unsigned char *)PyBytes_AS_STRING(args[1]);
    if (plen) {  /* the line held from the reads before, then this one */
        if ((joined = join(PyBytes_AS_STRING(args[0]), plen, buf, dlen)) == NULL) return NULL;
        buf = joined;
    }
    /* the complete lines end at the last line end that is not a CR run at the very end (an LF may follow) */
    Py_ssize_t j = len, end;
    while (j && buf[j - 1] == '\r') j--;
    for (end = j; end > 0 && !LINE_END[buf[end - 1]]; end--) {}
    PyObject *result = NULL, *rest = NULL, *looked = NULL;
    if (end == 0) {  /* no line ended */
        if (plen == 0 && dlen == len) { rest = args[1]; Py_INCREF(rest); }
        else rest = PyBytes_FromStringAndSize((const char *)buf, len);
        if (rest != NULL) result = Py_BuildValue("([]nO[]N)", (Py_ssize_t)0, Py_False, rest);
        goto done;
    }
    const unsigned char *block = buf, *block_end = buf + end, *esc = memchr(buf, 0x1B, end);
    if (esc != NULL) {  /* escapes stripped from the whole block (no sequence spans a line end) */
        if ((stripped = PyMem_Malloc(end)) == NULL) { PyErr_NoMemory(); goto done; }
        unsigned char *o = stripped;
        memcpy(o, buf, esc - buf);
        o += esc - buf;
        for (const unsigned char *p = esc; p < block_end;) {
            if (*p == 0x1B) {
                Py_ssize_t n = escape_len(p, block_end);
                if (n) { p += n; continue; }
            }
            *o++ = *p++;
        }
        block = stripped;
        block_end = o;
    }
    looked = lookup_core(block, block_end, args[2], args[3], canon, line0, lead, skip_first);
    if (looked == NULL) goto done;
    rest = PyBytes_FromStringAndSize((const char *)buf + end, len - end);
    if (rest == NULL) goto done;
    result = PyTuple_Pack(5, PyTuple_GET_ITEM(looked, 0), PyTuple_GET_ITEM(looked, 1), PyTuple_GET_ITEM(looked, 2),
                          PyTuple_GET_ITEM(looked, 3), rest);
    Py_DECREF(rest);
done:
    Py_XDECREF(looked);
    PyMem_Free(joined);
    PyMem_Free(stripped);
    return result;
}

/* a growing output: first in the caller's stack buffer (a read's events fit), then on the heap */
typedef struct { char *buf; Py_ssize_t len, cap; int heap; } Out;

static int out_add(Out *o, const char *s, Py_ssize_t n) {
    if (o->len + n > o->cap) {
        Py_ssize_t cap = (o->cap + n) * 2;
        char *buf = o->heap ? PyMem_Realloc(o->buf, cap) : PyMem_Malloc(cap);
        if (buf == NULL) { PyErr_NoMemory(); return -1; }
        if (!o->heap) memcpy(buf, o->buf, o->len);
        o->buf = buf;
        o->cap = cap;
        o->heap = 1;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    return 0;
}

static void out_free(Out *o) {
    if (o->heap) PyMem_Free(o->buf);
}

/* ``n`` in decimal, then ", " (a line number in an event's JSON line) */
static int out_number(Out *o, long n) {
    char digits[32], *d = digits + sizeof digits;
    unsigned long u = n < 0 ? 0UL - (unsigned long)n : (unsigned long)n;
    *--d = ' ';
    *--d = ',';
    do { *--d = (char)('0' + u % 10); u /= 10; } while (u);
    if (n < 0) *--d = '-';
    return out_add(o, d, digits + sizeof digits - d);
}

/* an ASCII str's text into ``o``: 1 done, 0 not an ASCII str (the caller gives up), -1 an error */
static int out_ascii(Out *o, PyObject *text) {
    if (text == NULL || !PyUnicode_CheckExact(text) || !PyUnicode_IS_ASCII(text)) return 0;
    return out_add(o, (const char *)PyUnicode_DATA(text), PyUnicode_GET_LENGTH(text)) < 0 ? -1 : 1;
}

static PyObject *K_JPRE, *K_JPOST, *K_JHEAD, *K_JTAIL, *K_JSON_TAIL;

static PyObject *event_lines(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 3 || !PyList_Check(args[0]) || !PyUnicode_Check(args[1]) || !PyCallable_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "event_lines(hits: list, start: str, line: callable)");
        return NULL;
    }
    PyObject *hits = args[0], *start = args[1], *line_of = args[2];
    char stack[4096];
    Out o = {stack, 0, sizeof stack, 0};
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
                if (r == 1) r = out_number(&o, line) < 0 ? -1 : 1;
                if (made == Py_None) {
                    if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JPOST));
                } else {
                    if (r == 1) r = out_add(&o, "\"text\": \"", 9) < 0 ? -1 : 1;
                    if (r == 1) r = out_ascii(&o, PyDict_GetItemWithError(attrs, K_JHEAD));
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
    PyObject *result = PyBytes_FromStringAndSize(o.buf, o.len);
    out_free(&o);
    return result;
fail:
    out_free(&o);
    return NULL;
}

/* -- the timeline (recognise/timeline.py): Timeline.feed_all_py and Timeline._take, the same steps ------------- */

static PyObject *S_BOOTS, *S_RESTARTING, *S_PHASE, *S_PHASES, *S_COUNTS, *S_WORST, *S_KERNEL, *S_BEFORE, *S_FAILED,
    *S_SALVAGE, *S_END_LINE, *S_ENDED_BY, *S_NEW_BOOT, *K_KIND, *K_SEVERITY, *K_FIELDS, *K_SERVICE, *K_ACTION,
    *F_KERNEL, *P_UNKNOWN, *P_DOWN, *P_FIRMWARE, *P_KERNEL, *P_INIT, *P_AFS, *P_SALVAGING, *P_SERVICES,
    *P_LOGIN_READY, *P_PANICKED, *P_HUNG, *V_EMPTY, *V_RUNNING, *V_DONE, *V_INFO, *KIND_CODE, *SEV_RANK,
    *TIMELINE_KINDS;

enum { K_OTHER, K_FIRMWARE, K_LOADER, K_START, K_INIT, K_AFS, K_SALV_START, K_SALV_PROGRESS, K_SALV_DONE, K_SVC_OK,
       K_SVC_FAIL, K_LOGIN, K_PANIC, K_RESTART, K_SYSRQ, K_SILENT };
static const char *const KIND_NAMES[] = {NULL, "boot.firmware", "boot.loader", "boot.start", "init.start", "afs.start",
    "afs.salvage.start", "afs.salvage.progress", "afs.salvage.done", "service.ok", "service.fail", "login.prompt",
    "kernel.panic", "kernel.restart", "sysrq.ack", "console.silent"};

/* a == b for two str (1), or not (0), or an error (-1) */
static int str_eq(PyObject *a, PyObject *b) {
    if (a == b) return 1;
    if (!PyUnicode_Check(a) || !PyUnicode_Check(b)) return 0;
    int r = PyUnicode_Compare(a, b);
    if (r == -1 && PyErr_Occurred()) return -1;
    return r == 0;
}

static int kind_code(PyObject *k) {
    PyObject *code = PyDict_GetItemWithError(KIND_CODE, k);
    if (code == NULL) return PyErr_Occurred() ? -1 : K_OTHER;
    return (int)PyLong_AsLong(code);
}

static long sev_rank(PyObject *sev) {  /* SEVERITY_RANK.get(sev, 0) */
    PyObject *r = PyDict_GetItemWithError(SEV_RANK, sev);
    if (r == NULL) return PyErr_Occurred() ? -1 : 0;
    return PyLong_AsLong(r);
}

static int count_kind(PyObject *counts, PyObject *k) {  /* counts[k] = counts.get(k, 0) + 1 */
    if (!PyDict_Check(counts)) { PyErr_SetString(PyExc_TypeError, "Boot.counts: not a dict"); return -1; }
    PyObject *had = PyDict_GetItemWithError(counts, k);
    if (had == NULL && PyErr_Occurred()) return -1;
    PyObject *one;
    if (had == NULL) one = PyLong_FromLong(1);
    else if (PyLong_CheckExact(had)) {
        long n = PyLong_AsLong(had);
        one = n == -1 && PyErr_Occurred() ? NULL : PyLong_FromLong(n + 1);
    } else {
        PyObject *inc = PyLong_FromLong(1);
        one = inc == NULL ? NULL : PyNumber_Add(had, inc);
        Py_XDECREF(inc);
    }
    if (one == NULL) return -1;
    int r = PyDict_SetItem(counts, k, one);
    Py_DECREF(one);
    return r;
}

/* an attribute of ``o`` compared with the str ``v`` */
static int attr_is(PyObject *o, PyObject *name, PyObject *v) {
    PyObject *a = PyObject_GetAttr(o, name);
    if (a == NULL) return -1;
    int r = str_eq(a, v);
    Py_DECREF(a);
    return r;
}

/* the boot's phase is one of ``n`` phases */
static int phase_in(PyObject *phase, PyObject *const *phases, int n) {
    for (int i = 0; i < n; i++) {
        int r = str_eq(phase, phases[i]);
        if (r) return r;
    }
    return 0;
}

/* Timeline._set: the boot's phase becomes ``phase`` (and is listed) unless it is that already */
static int set_phase(PyObject *boot, PyObject *phase, PyObject *line) {
    int same = attr_is(boot, S_PHASE, phase);
    if (same) return same < 0 ? -1 : 0;
    if (PyObject_SetAttr(boot, S_PHASE, phase) < 0) return -1;
    PyObject *phases = PyObject_GetAttr(boot, S_PHASES);
    if (phases == NULL) return -1;
    PyObject *pair = PyTuple_Pack(2, phase, line);
    int r = pair == NULL ? -1 : PyList_Check(phases) ? PyList_Append(phases, pair) : -1;
    if (r < 0 && pair != NULL && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Boot.phases: not a list");
    Py_XDECREF(pair);
    Py_DECREF(phases);
    return r;
}

/* a failed service named in ``fields`` is added to the boot's list once */
static int add_failed(PyObject *boot, PyObject *fields) {
    if (!PyDict_Check(fields)) return 0;
    PyObject *svc = PyDict_GetItemWithError(fields, K_SERVICE);
    if (svc == NULL) return PyErr_Occurred() ? -1 : 0;
    int truth = PyObject_IsTrue(svc);
    if (truth <= 0) return truth;
    PyObject *failed = PyObject_GetAttr(boot, S_FAILED);
    if (failed == NULL) return -1;
    int r = PySequence_Contains(failed, svc);
    if (r == 0) r = PyList_Check(failed) ? PyList_Append(failed, svc) : -1;
    if (r < 0 && !PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "Boot.failed_services: not a list");
    Py_DECREF(failed);
    return r < 0 ? -1 : 0;
}

/* fields.get(key, default), a new reference */
static PyObject *field(PyObject *fields, PyObject *key, PyObject *dflt) {
    PyObject *v = PyDict_Check(fields) ? PyDict_GetItemWithError(fields, key) : NULL;
    if (v == NULL && PyErr_Occurred()) return NULL;
    v = v == NULL ? dflt : v;
    Py_INCREF(v);
    return v;
}

/* fields' action starts with "Resetting" or "Power Off" (a SysRq that restarts or stops the machine) */
static int resets(PyObject *fields) {
    PyObject *action = field(fields, K_ACTION, V_EMPTY);
    if (action == NULL) return -1;
    int r = 0;
    if (PyUnicode_Check(action)) {
        PyObject *a = PyUnicode_FromString("Resetting"), *b = PyUnicode_FromString("Power Off");
        if (a == NULL || b == NULL) r = -1;
        else {
            r = (int)PyUnicode_Tailmatch(action, a, 0, PY_SSIZE_T_MAX, -1);
            if (r == 0) r = (int)PyUnicode_Tailmatch(action, b, 0, PY_SSIZE_T_MAX, -1);
        }
        Py_XDECREF(a);
        Py_XDECREF(b);
    }
    Py_DECREF(action);
    return r;
}

/* the current boot (a new reference, or NULL with no error: there is none) */
static PyObject *current_boot(PyObject *boots) {
    Py_ssize_t n = PyList_GET_SIZE(boots);
    if (n == 0) return NULL;
    PyObject *b = PyList_GET_ITEM(boots, n - 1);
    Py_INCREF(b);
    return b;
}

static PyObject *new_boot(PyObject *tl, PyObject *line) {
    return PyObject_CallMethodOneArg(tl, S_NEW_BOOT, line);
}

/* Timeline._take(k, severity, fields, line) (the phase change it returns is not needed here): 0, or -1 */
static int take(PyObject *tl, PyObject *boots, PyObject *k, int code, PyObject *sev, PyObject *fields, PyObject *line) {
    PyObject *cur = current_boot(boots);
    int rc = -1;
    if (code == K_OTHER) {  /* counted and ranked, the phase stays */
        if (cur == NULL && (cur = new_boot(tl, line)) == NULL) return -1;
        PyObject *counts = PyObject_GetAttr(cur, S_COUNTS);
        if (counts == NULL || count_kind(counts, k) < 0) { Py_XDECREF(counts); goto done; }
        Py_DECREF(counts);
        if (!str_eq(sev, V_INFO)) {
            PyObject *worst = PyObject_GetAttr(cur, S_WORST);
            if (worst == NULL) goto done;
            long a = sev_rank(sev), b = sev_rank(worst);
            Py_DECREF(worst);
            if (a < 0 || b < 0) goto done;
            if (a > b && PyObject_SetAttr(cur, S_WORST, sev) < 0) goto done;
        }
        rc = 0;
        goto done;
    }
    PyObject *restarting_o = PyObject_GetAttr(tl, S_RESTARTING);
    if (restarting_o == NULL) goto done;
    int restarting = PyObject_IsTrue(restarting_o);
    Py_DECREF(restarting_o);
    if (restarting < 0) goto done;
    int fresh = 0, past_kernel = 0, phase_kernel = 0;
    if (cur != NULL) {
        PyObject *phase = PyObject_GetAttr(cur, S_PHASE);
        if (phase == NULL) goto done;
        int unknown = str_eq(phase, P_UNKNOWN);
        PyObject *early[] = {P_UNKNOWN, P_DOWN, P_FIRMWARE};
        int is_early = phase_in(phase, early, 3);
        phase_kernel = str_eq(phase, P_KERNEL);
        Py_DECREF(phase);
        if (unknown < 0 || is_early < 0 || phase_kernel < 0) goto done;
        if (unknown) {
            PyObject *phases = PyObject_GetAttr(cur, S_PHASES);
            if (phases == NULL) goto done;
            int any = PyObject_IsTrue(phases);
            Py_DECREF(phases);
            if (any < 0) goto done;
            fresh = !any;
        }
        past_kernel = !is_early;
    }
    int need_new = 0;
    if ((code == K_FIRMWARE || code == K_LOADER || code == K_START) && !(fresh && !restarting)) {
        int ended = 0;
        if (cur != NULL) {
            PyObject *end_line = PyObject_GetAttr(cur, S_END_LINE);
            if (end_line == NULL) goto done;
            ended = end_line != Py_None;
            Py_DECREF(end_line);
        }
        need_new = cur == NULL || restarting || ended || (past_kernel && !phase_kernel) || (code == K_START && past_kernel);
    } else if (code == K_INIT && (cur == NULL || restarting)) {
        need_new = 1;
    }
    if (need_new || cur == NULL) {
        Py_XDECREF(cur);
        if ((cur = new_boot(tl, line)) == NULL) return -1;
    }
    PyObject *counts = PyObject_GetAttr(cur, S_COUNTS);
    if (counts == NULL || count_kind(counts, k) < 0) { Py_XDECREF(counts); goto done; }
    Py_DECREF(counts);
    {
        PyObject *worst = PyObject_GetAttr(cur, S_WORST);
        if (worst == NULL) goto done;
        long a = sev_rank(sev), b = sev_rank(worst);
        Py_DECREF(worst);
        if (a < 0 || b < 0) goto done;
        if (a > b && PyObject_SetAttr(cur, S_WORST, sev) < 0) goto done;
    }
    PyObject *phase = PyObject_GetAttr(cur, S_PHASE);
    if (phase == NULL) goto done;
    int r = 0;
    switch (code) {
    case K_FIRMWARE: case K_LOADER:
        r = set_phase(cur, P_FIRMWARE, line);
        break;
    case K_START: {
        PyObject *kernel = field(fields, F_KERNEL, V_EMPTY);
        r = kernel == NULL ? -1 : PyObject_SetAttr(cur, S_KERNEL, kernel);
        Py_XDECREF(kernel);
        if (r == 0) r = set_phase(cur, P_KERNEL, line);
        break;
    }
    case K_INIT:
        r = set_phase(cur, P_INIT, line);
        break;
    case K_AFS:
        r = str_eq(phase, P_SALVAGING);
        if (r == 0) r = set_phase(cur, P_AFS, line);
        else if (r == 1) r = 0;
        break;
    case K_SALV_START: case K_SALV_PROGRESS: {
        int done_ = attr_is(cur, S_SALVAGE, V_DONE);
        if (done_ < 0) { r = -1; break; }
        if (!done_ || code == K_SALV_START) {
            if (PyObject_SetAttr(cur, S_SALVAGE, V_RUNNING) < 0) { r = -1; break; }
            int salvaging = str_eq(phase, P_SALVAGING);
            if (salvaging < 0 || (!salvaging && PyObject_SetAttr(cur, S_BEFORE, phase) < 0)) { r = -1; break; }
            r = set_phase(cur, P_SALVAGING, line);
        }
        break;
    }
    case K_SALV_DONE: {
        if (PyObject_SetAttr(cur, S_SALVAGE, V_DONE) < 0) { r = -1; break; }
        int salvaging = str_eq(phase, P_SALVAGING);
        if (salvaging < 0) { r = -1; break; }
        if (salvaging) {
            PyObject *before = PyObject_GetAttr(cur, S_BEFORE);
            if (before == NULL) { r = -1; break; }
            int empty = str_eq(before, V_EMPTY), unknown = str_eq(before, P_UNKNOWN);
            if (empty < 0 || unknown < 0) r = -1;
            else r = set_phase(cur, empty || unknown ? P_AFS : before, line);
            Py_DECREF(before);
        }
        break;
    }
    case K_SVC_OK: case K_SVC_FAIL: {
        PyObject *early[] = {P_INIT, P_AFS, P_KERNEL};
        r = phase_in(phase, early, 3);
        if (r == 1) r = set_phase(cur, P_SERVICES, line);
        break;
    }
    case K_LOGIN:
        r = str_eq(phase, P_PANICKED);
        if (r == 0) r = set_phase(cur, P_LOGIN_READY, line);
        else if (r == 1) r = 0;
        break;
    case K_PANIC:
        r = set_phase(cur, P_PANICKED, line);
        break;
    case K_RESTART: case K_SYSRQ: {
        int ends = code == K_RESTART ? 1 : resets(fields);
        if (ends <= 0) { r = ends; break; }
        PyObject *by = field(fields, K_ACTION, k);
        if (by == NULL || PyObject_SetAttr(cur, S_END_LINE, line) < 0 || PyObject_SetAttr(cur, S_ENDED_BY, by) < 0
            || PyObject_SetAttr(tl, S_RESTARTING, Py_True) < 0) r = -1;
        Py_XDECREF(by);
        if (r == 0) r = set_phase(cur, P_DOWN, line);
        break;
    }
    case K_SILENT: {
        PyObject *quiet[] = {P_LOGIN_READY, P_DOWN};
        r = phase_in(phase, quiet, 2);
        if (r == 0) r = set_phase(cur, P_HUNG, line);
        else if (r == 1) r = 0;
        break;
    }
    }
    Py_DECREF(phase);
    if (r < 0) goto done;
    if (code == K_SVC_FAIL && add_failed(cur, fields) < 0) goto done;
    rc = 0;
done:
    Py_XDECREF(cur);
    return rc;
}

/* Timeline._counted_only for the kinds feed_all asks it about (not service.ok, service.fail): 1, 0, or -1 */
static int counted_only(int code, PyObject *fields, PyObject *boot) {
    PyObject *phase = PyObject_GetAttr(boot, S_PHASE);
    if (phase == NULL) return -1;
    int r = 0;
    switch (code) {
    case K_LOGIN: { PyObject *p[] = {P_LOGIN_READY, P_PANICKED}; r = phase_in(phase, p, 2); break; }
    case K_AFS: { PyObject *p[] = {P_AFS, P_SALVAGING}; r = phase_in(phase, p, 2); break; }
    case K_PANIC: r = str_eq(phase, P_PANICKED); break;
    case K_SYSRQ: r = resets(fields); if (r >= 0) r = !r; break;
    case K_SALV_PROGRESS: case K_SALV_DONE: {
        int done_ = attr_is(boot, S_SALVAGE, V_DONE);
        int salvaging = str_eq(phase, P_SALVAGING);
        if (done_ < 0 || salvaging < 0) { r = -1; break; }
        if (code == K_SALV_DONE) { r = done_ && !salvaging; break; }
        if (done_) { r = 1; break; }
        int running = attr_is(boot, S_SALVAGE, V_RUNNING);
        r = running < 0 ? -1 : running && salvaging;
        break;
    }
    default: r = 0;
    }
    Py_DECREF(phase);
    return r;
}

/* timeline_feed(timeline, hits) -> None: Timeline.feed_all_py */
static PyObject *timeline_feed(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 2 || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "timeline_feed(timeline, hits: list)");
        return NULL;
    }
    PyObject *tl = args[0], *hits = args[1];
    PyObject *boots = PyObject_GetAttr(tl, S_BOOTS);
    if (boots == NULL) return NULL;
    if (!PyList_Check(boots)) {
        PyErr_SetString(PyExc_TypeError, "Timeline.boots: not a list");
        Py_DECREF(boots);
        return NULL;
    }
    PyObject *boot = NULL, *counts = NULL;  /* the current boot and its counts, while no phase event came */
    long worst = 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(hits); i++) {
        PyObject *hit = PyList_GET_ITEM(hits, i);
        if (!PyTuple_Check(hit) || PyTuple_GET_SIZE(hit) != 3 || !PyDict_Check(PyTuple_GET_ITEM(hit, 1))) {
            PyErr_SetString(PyExc_TypeError, "timeline_feed: a hit is (line, attrs: dict, made)");
            goto fail;
        }
        PyObject *line = PyTuple_GET_ITEM(hit, 0), *attrs = PyTuple_GET_ITEM(hit, 1);
        PyObject *k = PyDict_GetItemWithError(attrs, K_KIND);
        PyObject *sev = k == NULL ? NULL : PyDict_GetItemWithError(attrs, K_SEVERITY);
        if (k == NULL || sev == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "kind/severity");
            goto fail;
        }
        int code = kind_code(k);
        if (code < 0) goto fail;
        PyObject *fields = NULL;
        if (boot == NULL) {
            if (PyList_GET_SIZE(boots) == 0) {
                fields = PyDict_GetItemWithError(attrs, K_FIELDS);
                if (fields == NULL) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "fields"); goto fail; }
                if (take(tl, boots, k, code, sev, fields, line) < 0) goto fail;
                continue;
            }
            boot = current_boot(boots);
            counts = PyObject_GetAttr(boot, S_COUNTS);
            PyObject *w = counts == NULL ? NULL : PyObject_GetAttr(boot, S_WORST);
            if (w == NULL) goto fail;
            worst = sev_rank(w);
            Py_DECREF(w);
            if (worst < 0) goto fail;
        }
        if (code != K_OTHER) {
            fields = PyDict_GetItemWithError(attrs, K_FIELDS);
            if (fields == NULL) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_KeyError, "fields"); goto fail; }
            int to_take;
            if (code == K_SVC_OK || code == K_SVC_FAIL) {  /* the most frequent: a phase change only early on */
                PyObject *phase = PyObject_GetAttr(boot, S_PHASE);
                if (phase == NULL) goto fail;
                PyObject *early[] = {P_INIT, P_AFS, P_KERNEL};
                to_take = phase_in(phase, early, 3);
                Py_DECREF(phase);
                if (to_take < 0) goto fail;
                if (!to_take && code == K_SVC_FAIL && add_failed(boot, fields) < 0) goto fail;
            } else {
                int only = counted_only(code, fields, boot);
                if (only < 0) goto fail;
                to_take = !only;
            }
            if (to_take) {  /* it may start a boot or change the worst severity */
                Py_CLEAR(boot);
                Py_CLEAR(counts);
                if (take(tl, boots, k, code, sev, fields, line) < 0) goto fail;
                continue;
            }
        }
        if (count_kind(counts, k) < 0) goto fail;
        if (!str_eq(sev, V_INFO)) {
            long r = sev_rank(sev);
            if (r < 0) goto fail;
            if (r > worst) {
                if (PyObject_SetAttr(boot, S_WORST, sev) < 0) goto fail;
                worst = r;
            }
        }
    }
    Py_XDECREF(boot);
    Py_XDECREF(counts);
    Py_DECREF(boots);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(boot);
    Py_XDECREF(counts);
    Py_DECREF(boots);
    return NULL;
}

static int timeline_init(void) {
#define INTERN(v, s) if ((v = PyUnicode_InternFromString(s)) == NULL) return -1
    INTERN(S_BOOTS, "boots"); INTERN(S_RESTARTING, "_restarting"); INTERN(S_PHASE, "phase");
    INTERN(S_PHASES, "phases"); INTERN(S_COUNTS, "counts"); INTERN(S_WORST, "worst_severity");
    INTERN(S_KERNEL, "kernel"); INTERN(S_BEFORE, "before_salvage"); INTERN(S_FAILED, "failed_services");
    INTERN(S_SALVAGE, "salvage"); INTERN(S_END_LINE, "end_line"); INTERN(S_ENDED_BY, "ended_by");
    INTERN(S_NEW_BOOT, "_new_boot"); INTERN(K_KIND, "kind"); INTERN(K_SEVERITY, "severity");
    INTERN(K_FIELDS, "fields"); INTERN(K_SERVICE, "service"); INTERN(K_ACTION, "action"); INTERN(F_KERNEL, "kernel");
    INTERN(P_UNKNOWN, "unknown"); INTERN(P_DOWN, "down"); INTERN(P_FIRMWARE, "firmware"); INTERN(P_KERNEL, "kernel");
    INTERN(P_INIT, "init"); INTERN(P_AFS, "afs"); INTERN(P_SALVAGING, "salvaging"); INTERN(P_SERVICES, "services");
    INTERN(P_LOGIN_READY, "login-ready"); INTERN(P_PANICKED, "panicked"); INTERN(P_HUNG, "hung");
    INTERN(V_EMPTY, ""); INTERN(V_RUNNING, "running"); INTERN(V_DONE, "done"); INTERN(V_INFO, "info");
#undef INTERN
    KIND_CODE = PyDict_New();
    SEV_RANK = PyDict_New();
    TIMELINE_KINDS = PyTuple_New(K_SILENT);
    if (KIND_CODE == NULL || SEV_RANK == NULL || TIMELINE_KINDS == NULL) return -1;
    for (int c = K_FIRMWARE; c <= K_SILENT; c++) {
        PyObject *name = PyUnicode_InternFromString(KIND_NAMES[c]), *v = PyLong_FromLong(c);
        if (name == NULL || v == NULL || PyDict_SetItem(KIND_CODE, name, v) < 0) return -1;
        Py_DECREF(v);
        PyTuple_SET_ITEM(TIMELINE_KINDS, c - 1, name);
    }
    static const char *const sevs[] = {"info", "notice", "warning", "critical"};
    for (int r = 0; r < 4; r++) {
        PyObject *v = PyLong_FromLong(r);
        if (v == NULL || PyDict_SetItemString(SEV_RANK, sevs[r], v) < 0) return -1;
        Py_DECREF(v);
    }
    return 0;
}

static PyMethodDef methods[] = {
    {"log_lines", (PyCFunction)(void (*)(void))log_lines, METH_FASTCALL, "The log lines of a region of complete console lines, and their number."},
    {"rx_lines", (PyCFunction)(void (*)(void))rx_lines, METH_FASTCALL,
     "The log lines a read completes, with the line and line end it leaves open (transcript.rx_lines_py)."},
    {"event_lines", (PyCFunction)(void (*)(void))event_lines, METH_FASTCALL,
     "The JSON lines of a read's events (transcript.event_lines_py)."},
    {"strip_escapes", strip_escapes, METH_O, "The bytes without their ANSI escape sequences (clean.strip_escapes)."},
    {"lookup", (PyCFunction)(void (*)(void))lookup, METH_FASTCALL, "The lines of a block looked up in a classifier's line memory."},
    {"read_lines", (PyCFunction)(void (*)(void))read_lines, METH_FASTCALL,
     "The lines a read completes, looked up in a classifier's line memory (classifier.read_lines_py)."},
    {"timeline_feed", (PyCFunction)(void (*)(void))timeline_feed, METH_FASTCALL,
     "A timeline fed events given as hits (timeline.Timeline.feed_all_py)."},
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
    K_JHEAD = PyUnicode_InternFromString("_jhead");
    K_AT = PyUnicode_InternFromString("_at");
    if (K_JHEAD == NULL || K_AT == NULL) return NULL;
    K_JSON_TAIL = PyUnicode_InternFromString("json_tail");
    if (K_JPRE == NULL || K_JPOST == NULL || K_JTAIL == NULL || K_JSON_TAIL == NULL) return NULL;
    if (timeline_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    /* the kinds it treats as Timeline treats _PHASE_KINDS (a test compares them) */
    Py_INCREF(TIMELINE_KINDS);
    if (PyModule_AddObject(m, "TIMELINE_KINDS", TIMELINE_KINDS) < 0) { Py_DECREF(TIMELINE_KINDS); Py_DECREF(m); return NULL; }
    return m;
}
