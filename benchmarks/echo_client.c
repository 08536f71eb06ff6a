/*
 * echo_client.c: the load client of benchmarks/tcp_echo.py.
 *
 * Contract: connect once (the priming connection), do PRIME round trips on it
 * and close it; then open CONNS connections and do TRIPS request/response
 * round trips in total over them (one request in flight per connection), each
 * request SIZE bytes, each reply checked byte for byte against its request;
 * close every connection; print one JSON line on stdout:
 *
 *   {"round_trips": N, "conns": C, "size": S, "cpu": s, "cpu_measured": s,
 *    "wall_measured": s, "sched": "batch"|"other", "client": "c"}
 *
 * "cpu" is this process's user+system CPU over its whole life, "cpu_measured"
 * and "wall_measured" cover the measured connections only. A wrong reply, a
 * reset or an unexpected EOF prints a message on stderr and exits 1.
 * Non-blocking sockets and poll(2); no threads. With --batch the process asks
 * for SCHED_BATCH first (so that, sharing a CPU with the server, it does not
 * preempt the server at every reply); failing that it runs as it is.
 *
 * Usage: echo_client (--tcp HOST PORT | --unix PATH) CONNS TRIPS SIZE PRIME [--batch]
 * Compiled at run time by tcp_echo.py with `cc -O2`; no dependencies.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct conn {
    int fd;
    long trips_left; /* requests still to start, the current one included */
    size_t sent, got;
    unsigned char *req, *resp;
};

static const char *g_host, *g_path;
static int g_port;
static size_t g_size;

static void die(const char *what) {
    fprintf(stderr, "echo_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

static double cpu_now(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_one(void) {
    int fd;
    if (g_path) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        strncpy(sa.sun_path, g_path, sizeof sa.sun_path - 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
    } else {
        struct sockaddr_in sa;
        int one = 1;
        memset(&sa, 0, sizeof sa);
        sa.sin_family = AF_INET;
        sa.sin_port = htons(g_port);
        if (inet_pton(AF_INET, g_host, &sa.sin_addr) != 1) {
            fprintf(stderr, "echo_client: bad IPv4 address %s\n", g_host);
            exit(2);
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) die("socket");
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (fcntl(fd, F_SETFL, O_NONBLOCK) < 0) die("fcntl");
    return fd;
}

/* A fresh request: its first 8 bytes are a running counter, the rest a pattern. */
static void fill(struct conn *c, unsigned long long counter) {
    memcpy(c->req, &counter, sizeof counter < g_size ? sizeof counter : g_size);
    c->sent = c->got = 0;
}

/* Run every connection in cs[0..n) to completion; return the round trips done. */
static long drive(struct conn *cs, int n) {
    struct pollfd *pfds = calloc(n, sizeof *pfds);
    unsigned long long counter = 0;
    long done = 0;
    int open = 0;
    for (int i = 0; i < n; i++) {
        if (cs[i].trips_left > 0) {
            fill(&cs[i], counter++);
            open++;
        } else {
            close(cs[i].fd);
            cs[i].fd = -1;
        }
    }
    while (open) {
        for (int i = 0; i < n; i++) {
            pfds[i].fd = cs[i].fd;
            pfds[i].events = POLLIN | (cs[i].sent < g_size ? POLLOUT : 0);
            pfds[i].revents = 0;
        }
        if (poll(pfds, n, 10000) <= 0) {
            if (errno == EINTR) continue;
            fprintf(stderr, "echo_client: no progress for 10 s\n");
            exit(1);
        }
        for (int i = 0; i < n; i++) {
            struct conn *c = &cs[i];
            if (c->fd < 0 || !pfds[i].revents) continue;
            if (c->sent < g_size) {
                ssize_t k = send(c->fd, c->req + c->sent, g_size - c->sent, MSG_NOSIGNAL);
                if (k < 0 && errno != EAGAIN && errno != EINTR) die("send");
                if (k > 0) c->sent += (size_t)k;
            }
            /* read whatever has come back, even while still sending */
            while (c->got < c->sent) {
                ssize_t k = recv(c->fd, c->resp + c->got, g_size - c->got, 0);
                if (k == 0) {
                    fprintf(stderr, "echo_client: EOF from server mid-reply\n");
                    exit(1);
                }
                if (k < 0) {
                    if (errno == EAGAIN || errno == EINTR) break;
                    die("recv");
                }
                c->got += (size_t)k;
            }
            if (c->got == g_size) {
                if (memcmp(c->req, c->resp, g_size) != 0) {
                    fprintf(stderr, "echo_client: reply differs from request\n");
                    exit(1);
                }
                done++;
                if (--c->trips_left > 0) {
                    fill(c, counter++);
                } else {
                    close(c->fd);
                    c->fd = -1;
                    open--;
                }
            }
        }
    }
    free(pfds);
    return done;
}

static struct conn *make_conns(int n, long trips) {
    struct conn *cs = calloc(n, sizeof *cs);
    for (int i = 0; i < n; i++) {
        cs[i].trips_left = trips / n + (i < trips % n ? 1 : 0);
        cs[i].req = malloc(g_size);
        cs[i].resp = malloc(g_size);
        for (size_t j = 0; j < g_size; j++) cs[i].req[j] = (unsigned char)(j * 31 + i);
        cs[i].fd = connect_one();
    }
    return cs;
}

int main(int argc, char **argv) {
    int a = 1, batch = 0;
    if (argc >= 3 && strcmp(argv[1], "--unix") == 0) {
        g_path = argv[2];
        a = 3;
    } else if (argc >= 4 && strcmp(argv[1], "--tcp") == 0) {
        g_host = argv[2];
        g_port = atoi(argv[3]);
        a = 4;
    } else {
        fprintf(stderr, "usage: echo_client (--tcp HOST PORT | --unix PATH) CONNS TRIPS SIZE PRIME [--batch]\n");
        return 2;
    }
    if (argc < a + 4) {
        fprintf(stderr, "echo_client: missing CONNS TRIPS SIZE PRIME\n");
        return 2;
    }
    int conns = atoi(argv[a]);
    long trips = atol(argv[a + 1]);
    g_size = (size_t)atol(argv[a + 2]);
    long prime = atol(argv[a + 3]);
    if (argc > a + 4 && strcmp(argv[a + 4], "--batch") == 0) {
        struct sched_param sp = {0};
        batch = sched_setscheduler(0, SCHED_BATCH, &sp) == 0;
    }
    if (conns < 1 || trips < 0 || g_size < 1 || prime < 0) {
        fprintf(stderr, "echo_client: bad arguments\n");
        return 2;
    }
    if (prime > 0) {
        struct conn *p = make_conns(1, prime);
        if (drive(p, 1) != prime) return 1;
    }
    double cpu0 = cpu_now(), wall0 = wall_now();
    struct conn *cs = make_conns(conns, trips);
    long done = drive(cs, conns);
    double wall = wall_now() - wall0, cpu1 = cpu_now();
    printf("{\"round_trips\": %ld, \"conns\": %d, \"size\": %zu, \"cpu\": %.6f, "
           "\"cpu_measured\": %.6f, \"wall_measured\": %.6f, \"sched\": \"%s\", "
           "\"client\": \"c\"}\n",
           done, conns, g_size, cpu1, cpu1 - cpu0, wall, batch ? "batch" : "other");
    return done == trips ? 0 : 1;
}
