/*
 * virtio-serial test commands:
 *   vs-ports                 init, list ports
 *   vs JOB [JOB...]          NAME:w:N write, NAME:r:N read+verify, NAME:e:N echo;
 *                            all concurrently in one round-robin loop
 *   vs-open NAME / vs-close NAME   PORT_OPEN(1) / PORT_OPEN(0)
 *   vs-emerg TEXT            emerg_wr (config offset 8), if offered
 *   vs-timeout SECONDS       stall timeout for vs (default 60)
 *   vs-irq on|off            device interrupts (IOAPIC or MSI-X) when waiting
 *   vs-msix on|off           PCI: MSI-X (default) or INTx; before the first vs command
 *   vs-put NAME N [nokick]   hand N bytes (at most 256K) to NAME's TX queue and return
 *                            without waiting for the device to use them
 * NAME is a PORT_NAME or #N (port id). N takes K, M, G suffixes.
 * The data is splitmix64(k / 8) >> 8 * (k % 8) at stream offset k; each
 * port has one stream per direction, counted from 0 at boot and carried
 * across vs commands (echo advances both without checking).
 */
#include "virtio_console.h"
#include "virtio_mmio.h"     /* vm_parse_size */
#include "virtio_pci.h"

#define EXIT_VS_MISMATCH 0xe0
#define EXIT_VS_STALL    0xe1
#define MAX_JOBS         32
#define HEARTBEAT_MS     100
#define RX_BATCH         64     /* RX buffers per job per round */
#define VEC_VS_BASE      0x50

static uint64_t timeout_s = 60;
static int irq_mode;

typedef uint64_t __attribute__((aligned(1), may_alias)) u64u;

static inline uint64_t splitmix64(uint64_t x)
{
	uint64_t z = x + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline uint8_t pat_byte(uint64_t k)
{
	return (uint8_t)(splitmix64(k >> 3) >> (8 * (k & 7)));
}

static void pat_fill(uint8_t *d, uint64_t off, uint32_t n)
{
	for (; n && (off & 7); n--)
		*d++ = pat_byte(off++);
	for (; n >= 8; n -= 8, d += 8, off += 8)
		*(u64u *)d = splitmix64(off >> 3);
	for (; n; n--)
		*d++ = pat_byte(off++);
}

/* Index of the first byte that differs from the pattern, or -1. */
static int64_t pat_check(const uint8_t *s, uint64_t off, uint32_t n)
{
	uint32_t i = 0;
	for (; i < n && ((off + i) & 7); i++)
		if (s[i] != pat_byte(off + i))
			return i;
	for (; i + 8 <= n; i += 8)
		if (*(const u64u *)(s + i) != splitmix64((off + i) >> 3))
			break;
	for (; i < n; i++)
		if (s[i] != pat_byte(off + i))
			return i;
	return -1;
}

static inline void copy(void *d, const void *s, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) :: "memory");
}

static void usage(const char *cmd, const char *what)
{
	printf("guest: %s: %s\n", cmd, what);
	guest_exit(EXIT_USAGE);
}

static struct vc_port *need_port(const char *cmd, const char *name)
{
	if (!vc_init())
		guest_exit(EXIT_VS_DEVICE);
	struct vc_port *p = vc_find_port(name);
	if (!p) {
		printf("guest: %s: no port \"%s\"\n", cmd, name);
		guest_exit(EXIT_USAGE);
	}
	return p;
}

int cmd_vs_ports(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	vc_init();
	for (int i = 0; i < vc_ndevs; i++) {
		struct vc_dev *d = &vc_devs[i];
		for (uint32_t n = 0; n < d->max_ports; n++) {
			struct vc_port *p = &d->ports[n];
			if (p->added)
				printf("guest: vs port %u name=%s console=%u open=%u\n",
				       n, p->name, p->console, p->host_open);
		}
		printf("guest: vs max_ports=%u\n", d->cfg_max_ports);
	}
	return 0;
}

int cmd_vs_timeout(int argc, char **argv)
{
	uint64_t v;
	if (argc < 2 || !parse_u64(argv[1], &v) || !v)
		usage("vs-timeout", "want SECONDS > 0");
	timeout_s = v;
	return 0;
}

static int cmd_vs_openclose(int argc, char **argv, int open)
{
	if (argc < 2)
		usage(argv[0], "want a port NAME or #N");
	for (int i = 1; i < argc; i++) {
		struct vc_port *p = need_port(argv[0], argv[i]);
		vc_set_guest_open(p, open);
		printf("guest: %s %s ok\n", argv[0], argv[i]);
	}
	return 0;
}
int cmd_vs_open(int argc, char **argv) { return cmd_vs_openclose(argc, argv, 1); }
int cmd_vs_close(int argc, char **argv) { return cmd_vs_openclose(argc, argv, 0); }

int cmd_vs_emerg(int argc, char **argv)
{
	vc_init();
	struct vc_dev *d = vc_ndevs ? &vc_devs[0] : NULL;
	if (!d || !(d->m.offered & F_CONSOLE_EMERG)) {
		printf("guest: vs emerg not offered\n");
		return 0;
	}
	uint32_t n = 0;
	for (int i = 1; i < argc; i++) {
		for (const char *s = argv[i]; *s; s++, n++)
			d->m.ops->cfg_write(&d->m, 8, (uint8_t)*s, 4);
		d->m.ops->cfg_write(&d->m, 8, i + 1 < argc ? ' ' : '\n', 4);
		n++;
	}
	printf("guest: vs emerg wrote %u bytes\n", n);
	return 0;
}

/* `vs-put NAME N [nokick]`: N bytes of NAME's stream go into TX buffers
 * (all at once, so at most VC_TX_BUFS of them) and the command returns
 * without waiting for the device to use them; with nokick the avail
 * ring is published without a notification, as a driver may do while
 * the device suppresses them. A `poweroff` or `exit` right after leaves
 * the data to the VMM's shutdown path, which must still write it out. */
int cmd_vs_put(int argc, char **argv)
{
	uint64_t n;
	const char *end;
	int kick = argc == 3;
	if ((argc != 3 && argc != 4) || (!kick && strcmp(argv[3], "nokick")) ||
	    !vm_parse_size(argv[2], &end, &n) || *end || n > (uint64_t)VC_TX_BUFS * VC_TX_BUF)
		usage("vs-put", "want NAME N [nokick], N at most 256K");
	struct vc_port *p = need_port("vs-put", argv[1]);
	if (!p->guest_open)
		vc_set_guest_open(p, 1);
	vc_poll(p->dev);        /* reclaim what earlier commands left in flight */
	printf("guest: vs-put %s %lu%s\n", argv[1], n, kick ? "" : " nokick");
	for (uint64_t done = 0; done < n;) {
		uint8_t *buf;
		int slot = vc_tx_get(p, &buf);
		if (slot < 0) {
			printf("guest: vs-put: %s has buffers in flight\n", argv[1]);
			guest_exit(EXIT_USAGE);
		}
		uint32_t len = n - done < VC_TX_BUF ? (uint32_t)(n - done) : VC_TX_BUF;
		pat_fill(buf, p->tx_pos, len);
		vc_tx_submit(p, slot, len);
		p->tx_pos += len;
		done += len;
	}
	if (kick) {
		vq_flush(p->tx);
	} else {
		barrier();
		p->tx->avail->idx = p->tx->avail_idx;
		p->tx->pub_idx = p->tx->avail_idx;
	}
	return 0;
}

int cmd_vs_msix(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off")))
		usage("vs-msix", "want on or off");
	if (vc_ndevs)
		usage("vs-msix", "must come before the first vs command");
	vpci_use_msix = !strcmp(argv[1], "on");
	printf("guest: vs-msix %s\n", argv[1]);
	return 0;
}

int cmd_vs_irq(int argc, char **argv)
{
	if (argc < 2 || (strcmp(argv[1], "on") && strcmp(argv[1], "off")))
		usage("vs-irq", "want on or off");
	int on = !strcmp(argv[1], "on");
	vc_init();
	uint8_t bsp = my_apic_id();
	if (on)
		lapic_enable();
	for (int i = 0; i < vc_ndevs; i++) {
		struct vdev *m = &vc_devs[i].m;
		uint8_t vec = (uint8_t)(VEC_VS_BASE + i);
		m->irq_seen = irq_counts[vec];
		m->vector = on ? vec : 0;
		m->ops->irq_route(m, vec, bsp, on);
	}
	if (on)
		irq_enable();
	else
		irq_disable();
	irq_mode = on;
	printf("guest: vs-irq %s\n", on ? "on" : "off");
	return 0;
}

struct job {
	const char *spec;
	char name[64];
	char kind;
	uint64_t n;
	struct vc_port *p;
	uint64_t rd, wr;        /* verified / submitted bytes */
	uint64_t last_progress;
	int done, inflight;
};

static int parse_job(struct job *j, char *spec)
{
	char *c2 = NULL, *c1 = NULL;
	for (char *s = spec; *s; s++)
		if (*s == ':') {
			c1 = c2;
			c2 = s;
		}
	if (!c1 || c2 != c1 + 2)
		return 0;
	char kind = c1[1];
	const char *end;
	uint64_t n;
	if ((kind != 'w' && kind != 'r' && kind != 'e') || !vm_parse_size(c2 + 1, &end, &n) || *end)
		return 0;
	*c1 = 0;
	j->p = need_port("vs", spec);
	snprintf(j->name, sizeof j->name, "%s", spec);
	*c1 = ':';
	j->spec = spec;
	j->kind = kind;
	j->n = n;
	return 1;
}

static uint64_t ms_now(uint64_t khz) { return (rdtsc() - boot_tsc) / khz; }

static NORETURN void mismatch(struct job *j, uint64_t off, uint8_t got)
{
	printf("guest: vs %s mismatch at offset %lu got 0x%02x want 0x%02x\n",
	       j->spec, off, got, pat_byte(off));
	guest_exit(EXIT_VS_MISMATCH);
}

/* One round for a job; returns 1 if it moved. */
static int step(struct job *j)
{
	struct vc_port *p = j->p;
	int moved = 0;
	if (j->kind == 'r') {
		const uint8_t *data;
		uint32_t avail;
		for (int k = 0; k < RX_BATCH && j->rd < j->n && (avail = vc_rx_peek(p, &data)); k++) {
			uint32_t take = j->n - j->rd < avail ? (uint32_t)(j->n - j->rd) : avail;
			int64_t bad = pat_check(data, p->rx_pos, take);
			if (bad >= 0)
				mismatch(j, p->rx_pos + (uint64_t)bad, data[bad]);
			vc_rx_consume(p, take);
			p->rx_pos += take;
			j->rd += take;
			moved = 1;
		}
		if (j->rd == j->n)
			j->done = 1;
		return moved;
	}
	int inflight = vc_tx_inflight(p);
	if (inflight < j->inflight)
		moved = 1;              /* the device took buffers */
	if (p->host_open && p->guest_open) {
		uint8_t *buf;
		int slot;
		while (j->wr < j->n) {
			if (j->kind == 'w') {
				if ((slot = vc_tx_get(p, &buf)) < 0)
					break;
				uint32_t len = j->n - j->wr < VC_TX_BUF ? (uint32_t)(j->n - j->wr) : VC_TX_BUF;
				pat_fill(buf, p->tx_pos, len);
				vc_tx_submit(p, slot, len);
				p->tx_pos += len;
				j->wr += len;
			} else {        /* echo: gather what has arrived into one TX buffer */
				const uint8_t *data;
				uint32_t avail = vc_rx_peek(p, &data), len = 0;
				if (!avail || (slot = vc_tx_get(p, &buf)) < 0)
					break;
				while (avail && len < VC_TX_BUF && j->wr + len < j->n) {
					uint32_t take = avail;
					if (take > VC_TX_BUF - len)
						take = VC_TX_BUF - len;
					if (take > j->n - j->wr - len)
						take = (uint32_t)(j->n - j->wr - len);
					copy(buf + len, data, take);
					vc_rx_consume(p, take);
					len += take;
					avail = vc_rx_peek(p, &data);
				}
				vc_tx_submit(p, slot, len);
				p->rx_pos += len;
				p->tx_pos += len;
				j->wr += len;
			}
			moved = 1;
		}
	}
	j->inflight = vc_tx_inflight(p);
	if (j->wr == j->n && !j->inflight)
		j->done = 1;
	return moved;
}

static void arm_waits(struct job *jobs, int njobs)
{
	for (int i = 0; i < njobs; i++) {
		struct job *j = &jobs[i];
		if (j->done)
			continue;
		if (j->kind != 'w')
			vq_arm(j->p->rx);
		if (j->kind != 'r' && j->inflight)
			vq_arm(j->p->tx);
	}
	for (int i = 0; i < vc_ndevs; i++)
		if (vc_devs[i].m.features & F_CONSOLE_MULTIPORT)
			vq_arm(&vc_devs[i].vqs[2]);
}

int cmd_vs(int argc, char **argv)
{
	static struct job jobs[MAX_JOBS];
	int njobs = 0;
	if (argc < 2)
		usage("vs", "want JOBs NAME:w|r|e:N");
	if (!vc_init())
		guest_exit(EXIT_VS_DEVICE);
	memset(jobs, 0, sizeof jobs);
	for (int i = 1; i < argc; i++) {
		if (njobs == MAX_JOBS)
			usage("vs", "too many jobs");
		if (!parse_job(&jobs[njobs], argv[i])) {
			printf("guest: vs: bad job \"%s\" (want NAME:w|r|e:N)\n", argv[i]);
			guest_exit(EXIT_USAGE);
		}
		for (int k = 0; k < njobs; k++) {       /* one reader and one writer per port */
			struct job *a = &jobs[k], *b = &jobs[njobs];
			if (a->p == b->p && (a->kind == b->kind || a->kind == 'e' || b->kind == 'e'))
				usage("vs", "two jobs read or write the same port");
		}
		njobs++;
	}
	uint64_t khz = tsc_khz();
	for (int i = 0; i < njobs; i++)
		if (!jobs[i].p->guest_open)
			vc_set_guest_open(jobs[i].p, 1);
	uint64_t kicks0 = 0, irqs0 = 0;
	for (int i = 0; i < vc_ndevs; i++) {
		kicks0 += vc_devs[i].m.kicks;
		irqs0 += vc_devs[i].m.irqs;
	}
	uint64_t t0 = rdtsc(), next_hb = t0 + HEARTBEAT_MS * khz, stall = timeout_s * 1000 * khz;
	for (int i = 0; i < njobs; i++)
		jobs[i].last_progress = t0;
	int armed = 0;
	uint64_t idle_since = t0;
	for (;;) {
		for (int i = 0; i < vc_ndevs; i++)
			vc_poll(&vc_devs[i]);
		int left = 0, moved = 0;
		uint64_t now = rdtsc();
		for (int i = 0; i < njobs; i++) {
			struct job *j = &jobs[i];
			if (j->done)
				continue;
			if (step(j)) {
				j->last_progress = now;
				moved = 1;
			}
			left += !j->done;
		}
		for (int i = 0; i < vc_ndevs; i++)
			vc_flush(&vc_devs[i]);
		if (!left)
			break;
		if (moved) {
			armed = 0;
			idle_since = now;
		} else if (irq_mode && !armed && now - idle_since > khz / 10) {
			arm_waits(jobs, njobs);     /* about to wait: one interrupt when something completes */
			armed = 1;
		}
		if (now >= next_hb) {
			printf("guest: heartbeat %lu\n", ms_now(khz));
			next_hb += HEARTBEAT_MS * khz;
			if (next_hb < now)
				next_hb = now + HEARTBEAT_MS * khz;
		}
		int stalled = 0;
		for (int i = 0; i < njobs; i++) {
			struct job *j = &jobs[i];
			if (!j->done && now - j->last_progress > stall) {
				if (!stalled)   /* what did finish, then what did not */
					for (int k = 0; k < njobs; k++)
						if (jobs[k].done)
							printf("guest: vs %s done bytes=%lu\n", jobs[k].spec,
							       jobs[k].kind == 'r' ? jobs[k].rd : jobs[k].wr);
				printf("guest: vs %s stalled at offset %lu\n", j->name,
				       j->kind == 'r' ? j->p->rx_pos : j->p->tx_pos);
				stalled = 1;
			}
		}
		if (stalled)
			guest_exit(EXIT_VS_STALL);
		cpu_relax();
	}
	uint64_t cycles = rdtsc() - t0, kicks = 0, irqs = 0;
	for (int i = 0; i < vc_ndevs; i++) {
		kicks += vc_devs[i].m.kicks;
		irqs += vc_devs[i].m.irqs;
	}
	for (int i = 0; i < njobs; i++)
		printf("guest: vs %s done bytes=%lu\n", jobs[i].spec,
		       jobs[i].kind == 'r' ? jobs[i].rd : jobs[i].wr);
	printf("guest: vs done cycles=%lu kicks=%lu irqs=%lu\n", cycles, kicks - kicks0, irqs - irqs0);
	return 0;
}
