/* main.c — klaviyo-sim: a faithful offline Klaviyo for tests and the demo.
 *
 * klaviyo-sim [--host 127.0.0.1] [--port N] [--port-file FILE] [--seed N] [--time-scale F]
 *             [--no-limits] [--write-config DIR] [--quiet]
 *
 * After binding it prints exactly one line to stdout, "klaviyo-sim listening on
 * http://HOST:PORT", and writes the port to FILE (through a temporary file and rename).
 * SIGTERM / SIGINT end it with status 0.
 */
#include "log.h"
#include "sim.h"
#include "util.h"

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: klaviyo-sim [--host 127.0.0.1] [--port N] [--port-file FILE] [--seed N]\n"
            "                   [--time-scale F] [--no-limits] [--write-config DIR] [--quiet]\n"
            "  --port 0 (default) picks a free port; --time-scale 0<F<=1 shrinks every\n"
            "  rate-limit window; --no-limits never answers 429; --write-config writes\n"
            "  DIR/accounts.toml and DIR/.env for the demo accounts.\n");
}

static int
write_port_file(const char *path, int port)
{
    char *tmp = km_xasprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    int   rc = -1;

    if (!f)
        goto out;
    if (fprintf(f, "%d\n", port) < 0) {
        fclose(f);
        goto out;
    }
    if (fclose(f) != 0)
        goto out;
    if (rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        fprintf(stderr, "klaviyo-sim: cannot write the port file %s: %s\n", path,
                strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    return rc;
}

static int
parse_long(const char *s, long long lo, long long hi, long long *out)
{
    char     *end = NULL;
    long long v;

    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || !*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct simopts     o = { "127.0.0.1", 0, 1, 1.0, 0, 0 };
    const char        *port_file = NULL, *config_dir = NULL;
    struct event_base *base = NULL;
    sim               *s = NULL;
    int                status = 1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long   n;
        char       *end = NULL;

        if (strcmp(a, "--no-limits") == 0) {
            o.no_limits = 1;
            continue;
        }
        if (strcmp(a, "--quiet") == 0) {
            o.quiet = 1;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (!v) {
            fprintf(stderr, "klaviyo-sim: %s needs a value\n", a);
            usage(stderr);
            return 2;
        }
        i++;
        if (strcmp(a, "--host") == 0) {
            o.host = v;
        } else if (strcmp(a, "--port") == 0) {
            if (parse_long(v, 0, 65535, &n) != 0)
                goto bad;
            o.port = (int)n;
        } else if (strcmp(a, "--port-file") == 0) {
            port_file = v;
        } else if (strcmp(a, "--seed") == 0) {
            if (parse_long(v, 0, INT64_MAX, &n) != 0)
                goto bad;
            o.seed = (uint64_t)n;
        } else if (strcmp(a, "--time-scale") == 0) {
            o.time_scale = strtod(v, &end);
            if (!*v || *end || !(o.time_scale > 0.0 && o.time_scale <= 1.0))
                goto bad;
        } else if (strcmp(a, "--write-config") == 0) {
            config_dir = v;
        } else {
            fprintf(stderr, "klaviyo-sim: unknown option %s\n", a);
            usage(stderr);
            return 2;
        }
        continue;
    bad:
        fprintf(stderr, "klaviyo-sim: bad value for %s: %s\n", a, v);
        usage(stderr);
        return 2;
    }
    kmlog_set_level(o.quiet ? KMLOG_WARN : KMLOG_INFO);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    if (!base) {
        fprintf(stderr, "klaviyo-sim: cannot create an event base\n");
        goto out;
    }
    s = sim_new(base, &o);
    if (!s || sim_handle_signals(s) != 0)
        goto out;
    if (config_dir && sim_write_config(s, config_dir) != 0)
        goto out;
    if (port_file && write_port_file(port_file, sim_port(s)) != 0)
        goto out;
    printf("klaviyo-sim listening on %s\n", sim_base_url(s));
    fflush(stdout);
    kmlogf(KMLOG_INFO, "sim_started", "serving seed %llu on %s%s", (unsigned long long)o.seed,
           sim_base_url(s), o.no_limits ? " without rate limits" : "");
    if (event_base_dispatch(base) < 0)
        goto out;
    status = 0;
out:
    sim_free(s);
    if (base)
        event_base_free(base);
    return status;
}
