/* Sender-side CPU of one small HTTP response over loopback TCP, sent the two ways
 * connection.send-file could: mode 0 is a 200-byte head with MSG_MORE then sendfile(2) of
 * the file; mode 1 is pread of the file behind the head and one send. It is why
 * send_file.rs copies ranges up to 16 KiB and uses sendfile above (docs/benchmarks.md).
 *
 *   gcc -O2 tools/bench-small-send.c -o /tmp/bench-small-send -lpthread
 *   head -c 1024 /dev/urandom > /tmp/file
 *   /tmp/bench-small-send MODE RESPONSES FILE   (alternate the modes, several times)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int client;
static size_t total;

/* The client: reads everything sent, on its own thread (its CPU is not counted). */
static void *drain(void *unused) {
    char buf[65536];
    for (size_t got = 0; got < total;) {
        ssize_t n = read(client, buf, sizeof buf);
        if (n <= 0) break;
        got += n;
    }
    return unused;
}

static double thread_cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s MODE(0 sendfile, 1 copy) RESPONSES FILE\n", argv[0]);
        return 2;
    }
    int mode = atoi(argv[1]), responses = atoi(argv[2]);
    int file = open(argv[3], O_RDONLY);
    struct stat st;
    if (file < 0 || fstat(file, &st) != 0) { perror(argv[3]); return 1; }
    size_t size = st.st_size;

    int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof addr;
    bind(listener, (void *)&addr, sizeof addr);
    getsockname(listener, (void *)&addr, &len);
    listen(listener, 1);
    client = socket(AF_INET, SOCK_STREAM, 0);
    connect(client, (void *)&addr, sizeof addr);
    int server = accept(listener, 0, 0);
    setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    char head[200];
    memset(head, 'h', sizeof head);
    total = (size_t)responses * (sizeof head + size);
    pthread_t reader;
    pthread_create(&reader, 0, drain, 0);
    char *response = malloc(sizeof head + size);
    double start = thread_cpu_seconds();
    for (int i = 0; i < responses; i++) {
        if (mode == 0) {
            off_t offset = 0;
            send(server, head, sizeof head, MSG_MORE);
            sendfile(server, file, &offset, size);
        } else {
            memcpy(response, head, sizeof head);
            pread(file, response + sizeof head, size, 0);
            send(server, response, sizeof head + size, 0);
        }
    }
    double spent = thread_cpu_seconds() - start;
    pthread_join(reader, 0);
    printf("%s, %zu-byte file: %.2f us of sender CPU per response\n",
           mode == 0 ? "head + sendfile" : "pread + one send", size, spent / responses * 1e6);
    return 0;
}
