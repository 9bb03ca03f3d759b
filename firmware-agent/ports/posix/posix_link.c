/*
 * Links of the simulated board: stdio, a raw TCP server (one client at a time, like Renode's
 * socket terminal) or a pseudo-terminal. A reader thread feeds agent_rx(); output goes to the
 * current client. `--baud N` paces both directions like an 8N1 UART (10 bits per byte): input
 * reaches the agent, and output the peer, when its last byte would have left the wire.
 * `--reply-bytewise` writes every output byte with its own write() and leaves Nagle on.
 * BAUD switches the pacing speed (posix_set_baud). On a pty, the peer's port speed (the slave's
 * termios, set by whoever opened it) must equal the simulated UART's: otherwise input is lost
 * and output is not delivered, like two UARTs at different speeds.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "posix_port.h"

#define RX_BUF 4096
/* Reader threads need little stack; small stacks keep --boards 1000 cheap. */
#define READER_STACK (256u * 1024u)
/* A peer that reads nothing for this long loses output, like a UART nobody listens to. */
#define TX_STALL_MS 1000

const uint32_t posix_baud_rates[] = { 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600 };
const unsigned posix_baud_rate_count = sizeof(posix_baud_rates) / sizeof(posix_baud_rates[0]);

static unsigned wire_baud(struct posix_port *p)
{
	return __atomic_load_n(&p->baud, __ATOMIC_ACQUIRE);
}

static const struct {
	speed_t code;
	unsigned baud;
} speeds[] = {
	{ B9600, 9600 },     { B19200, 19200 },   { B38400, 38400 },   { B57600, 57600 },
	{ B115200, 115200 }, { B230400, 230400 }, { B460800, 460800 }, { B921600, 921600 },
};

#ifdef __linux__
/* The kernel's struct termios2 (asm/termbits.h clashes with termios.h): TCGETS2 reports the
 * exact speed also for the arbitrary rates (BOTHER) that serial libraries set. */
struct k_termios2 {
	tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
	cc_t c_line;
	cc_t c_cc[19];
	speed_t c_ispeed, c_ospeed;
};
#define K_TCGETS2 _IOR('T', 0x2A, struct k_termios2)
#endif

/* The speed the pty's peer set on its side (0: not a pty, or not known). */
static unsigned peer_baud(struct posix_port *p, int fd)
{
	struct termios tio;
	speed_t code;

	if (p->link != LINK_PTY || fd < 0)
		return 0;
#ifdef __linux__
	{
		struct k_termios2 t2;
		if (ioctl(fd, K_TCGETS2, &t2) == 0)
			return t2.c_ospeed;
	}
#endif
	if (tcgetattr(fd, &tio) != 0)
		return 0;
	code = cfgetospeed(&tio);
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (speeds[i].code == code)
			return speeds[i].baud;
	return 0;
}

/* Both ends of a pty at different known speeds: the bytes would be garbage on a real UART. */
static bool speeds_disagree(struct posix_port *p, int fd)
{
	unsigned mine = wire_baud(p), peer;

	if (!mine)
		return false;
	peer = peer_baud(p, fd);
	return peer && peer != mine;
}

static void baud_switched(struct posix_port *p, unsigned land, unsigned asked)
{
	char msg[96];

	__atomic_store_n(&p->baud, land, __ATOMIC_RELEASE);
	snprintf(msg, sizeof(msg), "UART now at %u baud%s", land,
		 land != asked ? " (--test-baud-wrong)" : "");
	posix_log(p, msg);
}

int posix_set_baud(void *ctx, uint32_t baud, bool after_next_line)
{
	struct posix_port *p = ctx;
	unsigned land = p->test_baud_wrong && baud != p->boot_baud ? baud / 2 : baud;

	pthread_mutex_lock(&p->out_lock);
	if (after_next_line)
		p->pending_baud = land; /* posix_link_write switches once the line has left */
	else
		baud_switched(p, land, baud);
	p->pending_asked = baud;
	pthread_mutex_unlock(&p->out_lock);
	return 0;
}

/* Sleeps until `wire` + n byte times; `idle` says the wire has been idle, so these bytes start
 * now, not where the previous ones ended. */
static void pace(struct posix_port *p, struct timespec *wire, size_t n, bool idle)
{
	struct timespec now;
	int64_t behind_ns;
	uint64_t ns;

	unsigned baud = wire_baud(p);

	if (!baud || !n)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	behind_ns = (int64_t)(now.tv_sec - wire->tv_sec) * 1000000000 + (now.tv_nsec - wire->tv_nsec);
	/* far behind: the wire was idle even if the caller could not tell (a blocking fd) */
	if (behind_ns > 0 && (idle || behind_ns > 50000000))
		*wire = now;
	ns = (uint64_t)n * 10u * 1000000000u / baud + (uint64_t)wire->tv_nsec;
	wire->tv_sec += (time_t)(ns / 1000000000u);
	wire->tv_nsec = (long)(ns % 1000000000u);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, wire, NULL) == EINTR)
		;
}

/*
 * Writes all of buf (or gives up on a stalled or gone peer). `step` bytes per write(): the whole
 * rest normally, 1 with --reply-bytewise (like older Renode builds: one write per byte).
 */
static void write_out(struct posix_port *p, const char *buf, size_t len, size_t step)
{
	size_t off = 0;

	while (off < len) {
		size_t want = len - off < step ? len - off : step;
		ssize_t n = write(p->out_fd, buf + off, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = p->out_fd, .events = POLLOUT };
			if (!p->tx_stalled && poll(&pfd, 1, TX_STALL_MS) > 0)
				continue;
			if (!p->tx_stalled)
				posix_log(p, "link stalled: dropping output until the peer reads");
			p->tx_stalled = true;
			return;
		}
		if (n <= 0)
			return; /* client gone: the line is lost like on a real UART */
		p->tx_stalled = false;
		off += (size_t)n;
	}
}

void posix_link_write(struct posix_port *p, const char *buf, size_t len)
{
	bool lost;

	pthread_mutex_lock(&p->out_lock);
	/* A UART delivers a line's last byte len*10/baud after its first: pace, then hand it over. */
	pace(p, &p->tx_wire, len, true); /* the agent emits whole lines: behind = idle */
	lost = p->out_fd >= 0 && speeds_disagree(p, p->out_fd); /* at the speed it was sent */
	if (p->pending_baud) {
		/* the line's last bit has left at the old speed: the UART switches before the peer
		 * can have seen the line (and answered at the new speed) */
		baud_switched(p, p->pending_baud, p->pending_asked);
		p->pending_baud = 0;
	}
	if (lost)
		posix_log(p, "peer's port runs at another speed: a line was lost on the wire");
	else if (p->out_fd >= 0)
		write_out(p, buf, len, p->reply_bytewise ? 1 : len);
	pthread_mutex_unlock(&p->out_lock);
}

static void set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl >= 0)
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void set_out(struct posix_port *p, int fd)
{
	pthread_mutex_lock(&p->out_lock);
	p->out_fd = fd;
	p->tx_stalled = false;
	pthread_mutex_unlock(&p->out_lock);
}

/* Reads until EOF/error, delivering bytes at the line rate. Returns on EOF. */
static void pump(struct posix_port *p, int fd)
{
	uint8_t buf[RX_BUF];
	/* Bytes that were already queued when we read them kept the wire busy since the previous
	 * ones: pacing continues from where those ended. After a wait for input the wire was idle. */
	bool waited = true;

	for (;;) {
		unsigned baud = wire_baud(p); /* BAUD may change it between reads */
		size_t step = baud ? (baud / 10 / 100 + 1) : sizeof(buf); /* ~10 ms of bytes */
		bool garbled;
		ssize_t n;

		if (step > sizeof(buf))
			step = sizeof(buf);
		n = read(fd, buf, step);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			poll(&pfd, 1, -1);
			waited = true;
			continue;
		}
		if (n <= 0)
			return;
		garbled = speeds_disagree(p, fd); /* decided while the bytes are on the wire */
		pace(p, &p->rx_wire, (size_t)n, waited);
		waited = false;
		if (garbled) {
			posix_log(p, "peer's port runs at another speed: input lost on the wire");
			continue;
		}
		pthread_mutex_lock(&p->rx_lock);
		agent_rx(&p->agent, buf, (size_t)n);
		pthread_mutex_unlock(&p->rx_lock);
	}
}

static void *stdio_reader(void *arg)
{
	struct posix_port *p = arg;

	pump(p, STDIN_FILENO);
	posix_log(p, "stdin closed: exiting");
	kill(getpid(), SIGTERM);
	return NULL;
}

static void *tcp_reader(void *arg)
{
	struct posix_port *p = arg;
	int lfd = p->out_fd; /* the listening socket was parked here by tcp_start */

	set_out(p, -1);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		int one = 1;
		int cfd = accept(lfd, (struct sockaddr *)&peer, &plen);

		if (cfd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			posix_log(p, "accept failed");
			return NULL;
		}
		/* --reply-bytewise leaves Nagle on, like the Renode builds it imitates */
		if (!p->reply_bytewise)
			setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		set_nonblocking(cfd);
		posix_log(p, "client connected");
		pthread_mutex_lock(&p->rx_lock);
		agent_rx_reset(&p->agent);
		pthread_mutex_unlock(&p->rx_lock);
		set_out(p, cfd);
		agent_hello(&p->agent);
		pump(p, cfd);
		set_out(p, -1);
		close(cfd);
		posix_log(p, "client disconnected");
	}
}

static int tcp_start(struct posix_port *p, pthread_t *th, const pthread_attr_t *attr)
{
	char host[256];
	const char *colon = strrchr(p->listen_addr, ':');
	struct addrinfo hints, *res = NULL;
	struct sockaddr_storage bound;
	socklen_t blen = sizeof(bound);
	char hbuf[NI_MAXHOST], pbuf[NI_MAXSERV];
	int fd, one = 1;

	if (!colon || (size_t)(colon - p->listen_addr) >= sizeof(host)) {
		fprintf(stderr, "wasmbed-agent-sim: --listen wants HOST:PORT, got '%s'\n", p->listen_addr);
		return -EINVAL;
	}
	memcpy(host, p->listen_addr, (size_t)(colon - p->listen_addr));
	host[colon - p->listen_addr] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE;
	if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res) != 0 || !res) {
		fprintf(stderr, "wasmbed-agent-sim: cannot resolve '%s'\n", p->listen_addr);
		return -EINVAL;
	}
	fd = socket(res->ai_family, res->ai_socktype, res->ai_protocol);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1) != 0 ||
	    getsockname(fd, (struct sockaddr *)&bound, &blen) != 0) {
		fprintf(stderr, "wasmbed-agent-sim: cannot listen on '%s': %s\n", p->listen_addr,
			strerror(errno));
		freeaddrinfo(res);
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	freeaddrinfo(res);
	getnameinfo((struct sockaddr *)&bound, blen, hbuf, sizeof(hbuf), pbuf, sizeof(pbuf),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	printf(strchr(hbuf, ':') ? "listening on [%s]:%s\n" : "listening on %s:%s\n", hbuf, pbuf);
	fflush(stdout);
	p->out_fd = fd;
	return -pthread_create(th, attr, tcp_reader, p);
}

static void *pty_reader(void *arg)
{
	struct posix_port *p = arg;
	int fd = p->out_fd;

	for (;;) {
		pump(p, fd); /* only returns on error: retry after a pause */
		usleep(50000);
	}
	return NULL;
}

static int pty_start(struct posix_port *p, pthread_t *th, const pthread_attr_t *attr)
{
	struct termios tio;
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	const char *name;
	int slave;

	if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0 ||
	    !(name = ptsname(master))) {
		fprintf(stderr, "wasmbed-agent-sim: cannot create a pty: %s\n", strerror(errno));
		return -errno;
	}
	/* keep one slave fd open so the master never sees EIO between clients; set raw mode */
	slave = open(name, O_RDWR | O_NOCTTY);
	if (slave < 0 || tcgetattr(slave, &tio) != 0) {
		fprintf(stderr, "wasmbed-agent-sim: cannot open %s: %s\n", name, strerror(errno));
		return -errno;
	}
	cfmakeraw(&tio);
	for (size_t i = 0; i < sizeof(speeds) / sizeof(speeds[0]); i++)
		if (speeds[i].baud == p->baud)
			cfsetspeed(&tio, speeds[i].code); /* a peer that opens it as-is agrees with us */
	tcsetattr(slave, TCSANOW, &tio);
	printf("pty %s\n", name);
	fflush(stdout);
	set_nonblocking(master);
	p->out_fd = master;
	agent_hello(&p->agent);
	return -pthread_create(th, attr, pty_reader, p);
}

int posix_link_start(struct posix_port *p)
{
	pthread_attr_t attr;
	pthread_t th;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, READER_STACK);
	switch (p->link) {
	case LINK_TCP:
		rc = tcp_start(p, &th, &attr);
		break;
	case LINK_PTY:
		rc = pty_start(p, &th, &attr);
		break;
	default:
		p->out_fd = STDOUT_FILENO;
		agent_hello(&p->agent);
		rc = -pthread_create(&th, &attr, stdio_reader, p);
		break;
	}
	pthread_attr_destroy(&attr);
	if (rc == 0)
		pthread_detach(th);
	return rc;
}
