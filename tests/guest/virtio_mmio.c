/*
 * virtio-mmio transport (virtio 1.2 §4.2) and split virtqueues (§2.7).
 * Polling driver: used rings are read from memory; interrupts are
 * suppressed with used_event unless vq_arm() asks for one.
 */
#include "virtio_mmio.h"

#define MAX_RINGS   (4 * 64)
#define RING_PAGES  3           /* desc, avail, used: one 4 KiB page each at num <= 256 */

static uint8_t ring_arena[MAX_RINGS][RING_PAGES][4096] __attribute__((aligned(4096)));
static int rings_used;

NORETURN void vs_device_error(const char *fmt, ...)
{
	char buf[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	printf("guest: vs device error: %s\n", buf);
	guest_exit(EXIT_VS_DEVICE);
}

/* Linux memparse(): number (0x hex or decimal) with an optional K/M/G/T suffix. */
int vm_parse_size(const char *s, const char **end, uint64_t *out)
{
	uint64_t v = 0;
	int digits = 0;
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		for (s += 2;; s++, digits++) {
			unsigned d;
			if (*s >= '0' && *s <= '9')
				d = *s - '0';
			else if (*s >= 'a' && *s <= 'f')
				d = *s - 'a' + 10;
			else if (*s >= 'A' && *s <= 'F')
				d = *s - 'A' + 10;
			else
				break;
			v = v << 4 | d;
		}
	} else {
		for (; *s >= '0' && *s <= '9'; s++, digits++)
			v = v * 10 + (uint64_t)(*s - '0');
	}
	if (!digits)
		return 0;
	switch (*s) {
	case 'k': case 'K': v <<= 10; s++; break;
	case 'm': case 'M': v <<= 20; s++; break;
	case 'g': case 'G': v <<= 30; s++; break;
	case 't': case 'T': v <<= 40; s++; break;
	}
	*out = v;
	if (end)
		*end = s;
	return 1;
}

/* virtio_mmio.device=<size>@<base>:<irq>[:<id>] words of the PVH command line. */
int vm_cmdline_devices(struct vm_cmdline_dev *out, int max)
{
	const struct hvm_start_info *si = (const void *)(uintptr_t)pvh_start_info;
	if (!si->cmdline_paddr)
		return 0;
	static const char key[] = "virtio_mmio.device=";
	const char *s = (const char *)(uintptr_t)si->cmdline_paddr;
	int n = 0;
	for (const char *p = s; *p && n < max; p++) {
		if ((p != s && p[-1] != ' ' && p[-1] != ';' && p[-1] != '\t') ||
		    strncmp(p, key, sizeof key - 1))
			continue;
		const char *q = p + sizeof key - 1;
		struct vm_cmdline_dev d;
		uint64_t irq;
		if (!vm_parse_size(q, &q, &d.size) || *q++ != '@' ||
		    !vm_parse_size(q, &q, &d.base) || *q++ != ':' ||
		    *q < '0' || *q > '9') {
			printf("guest: vs bad virtio_mmio.device word\n");
			continue;
		}
		for (irq = 0; *q >= '0' && *q <= '9'; q++)
			irq = irq * 10 + (uint64_t)(*q - '0');
		d.irq = (uint32_t)irq;
		if (d.base >= 0x100000000ull || d.size < 0x100) {
			printf("guest: vs virtio_mmio.device at 0x%lx not usable\n", d.base);
			continue;
		}
		out[n++] = d;
	}
	return n;
}

int vm_begin(struct vmdev *d, uint32_t device_id, uint64_t want)
{
	uint32_t magic = vm_read(d, VM_MAGIC), ver = vm_read(d, VM_VERSION);
	d->device_id = vm_read(d, VM_DEVICE_ID);
	if (magic != VIRT_MAGIC || ver != 2 || d->device_id != device_id)
		return 0;
	vm_write(d, VM_STATUS, 0);                                  /* reset */
	for (int i = 0; i < 1000 && vm_read(d, VM_STATUS); i++)
		cpu_relax();
	vm_write(d, VM_STATUS, ST_ACKNOWLEDGE);
	vm_write(d, VM_STATUS, ST_ACKNOWLEDGE | ST_DRIVER);
	vm_write(d, VM_DEV_FEAT_SEL, 0);
	uint64_t f = vm_read(d, VM_DEV_FEAT);
	vm_write(d, VM_DEV_FEAT_SEL, 1);
	f |= (uint64_t)vm_read(d, VM_DEV_FEAT) << 32;
	d->offered = f;
	if (!(f & F_VERSION_1)) {
		printf("guest: vs device at 0x%lx does not offer VERSION_1\n", (uint64_t)d->base);
		vm_write(d, VM_STATUS, ST_FAILED);
		return 0;
	}
	d->features = f & (want | F_VERSION_1);
	d->event_idx = !!(d->features & F_EVENT_IDX);
	vm_write(d, VM_DRV_FEAT_SEL, 0);
	vm_write(d, VM_DRV_FEAT, (uint32_t)d->features);
	vm_write(d, VM_DRV_FEAT_SEL, 1);
	vm_write(d, VM_DRV_FEAT, (uint32_t)(d->features >> 32));
	vm_write(d, VM_STATUS, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK);
	if (!(vm_read(d, VM_STATUS) & ST_FEATURES_OK)) {
		printf("guest: vs device at 0x%lx rejected features 0x%lx\n", (uint64_t)d->base, d->features);
		vm_write(d, VM_STATUS, ST_FAILED);
		return 0;
	}
	return 1;
}

static void write64(struct vmdev *d, uint32_t reg, uint64_t v)
{
	vm_write(d, reg, (uint32_t)v);
	vm_write(d, reg + 4, (uint32_t)(v >> 32));
}

int vq_setup(struct vmdev *d, struct vq *q, uint16_t index, uint16_t max_num)
{
	memset(q, 0, sizeof *q);
	q->dev = d;
	q->index = index;
	vm_write(d, VM_QUEUE_SEL, index);
	if (vm_read(d, VM_QUEUE_READY))
		return 0;
	uint32_t nmax = vm_read(d, VM_QUEUE_NUM_MAX);
	if (!nmax)
		return 0;
	if (rings_used >= MAX_RINGS) {
		printf("guest: vs out of ring memory at queue %u\n", index);
		return 0;
	}
	uint32_t num = max_num < VQ_MAX ? max_num : VQ_MAX;
	if (num > nmax)
		num = nmax;
	while (num & (num - 1))         /* split rings: a power of 2 */
		num &= num - 1;
	uint8_t (*mem)[4096] = ring_arena[rings_used++];
	q->num = (uint16_t)num;
	q->desc = (void *)mem[0];
	q->avail = (void *)mem[1];
	q->used = (void *)mem[2];
	/* No interrupts while polling: flag without event idx, a used_event behind us with it. */
	q->avail->flags = d->event_idx ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	q->avail->ring[q->num] = (uint16_t)(q->last_used - 1);
	vm_write(d, VM_QUEUE_NUM, num);
	write64(d, VM_QUEUE_DESC, (uintptr_t)q->desc);
	write64(d, VM_QUEUE_DRIVER, (uintptr_t)q->avail);
	write64(d, VM_QUEUE_DEVICE, (uintptr_t)q->used);
	vm_write(d, VM_QUEUE_READY, 1);
	return 1;
}

void vm_driver_ok(struct vmdev *d)
{
	vm_write(d, VM_STATUS, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

void vq_attach(struct vq *q, uint16_t id, void *buf, uint32_t cap)
{
	q->buf[id] = buf;
	q->cap[id] = cap;
	q->free[q->nfree++] = id;
	if (id >= q->nbufs)
		q->nbufs = (uint16_t)(id + 1);
}

int vq_get_free(struct vq *q)
{
	return q->nfree ? q->free[--q->nfree] : -1;
}

void vq_add(struct vq *q, uint16_t id, uint32_t len, int writable)
{
	volatile struct vring_desc *d = &q->desc[id];
	d->addr = (uintptr_t)q->buf[id];
	d->len = len;
	d->flags = writable ? VRING_DESC_F_WRITE : 0;
	d->next = 0;
	q->inflight[id] = 1;
	q->inflight_n++;
	q->avail->ring[q->avail_idx & (q->num - 1)] = id;
	q->avail_idx++;
}

int vq_has_used(struct vq *q)
{
	return q->num && q->used->idx != q->last_used;
}

int vq_used(struct vq *q, uint32_t *len)
{
	if (!q->num)
		return -1;
	uint16_t idx = q->used->idx;
	if (idx == q->last_used)
		return -1;
	if ((uint16_t)(idx - q->last_used) > q->num)
		vs_device_error("queue %u used idx %u runs %u ahead of %u (ring %u)",
				q->index, idx, (uint16_t)(idx - q->last_used), q->last_used, q->num);
	barrier();      /* x86: loads are not reordered with older loads */
	struct vring_used_elem e = { q->used->ring[q->last_used & (q->num - 1)].id,
				     q->used->ring[q->last_used & (q->num - 1)].len };
	if (e.id >= q->nbufs || !q->inflight[e.id])
		vs_device_error("queue %u used id %u not in flight (%u slots)", q->index, e.id, q->nbufs);
	if (e.len > q->cap[e.id])
		vs_device_error("queue %u used id %u len %u larger than its buffer (%u)",
				q->index, e.id, e.len, q->cap[e.id]);
	q->inflight[e.id] = 0;
	q->inflight_n--;
	q->last_used++;
	if (q->dev->event_idx)  /* keep used_event behind us: no interrupt */
		q->avail->ring[q->num] = (uint16_t)(q->last_used - 1);
	else
		q->avail->flags = VRING_AVAIL_F_NO_INTERRUPT;
	*len = e.len;
	return e.id;
}

/* Linux vring_need_event(). */
static inline int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vq_flush(struct vq *q)
{
	if (q->avail_idx == q->pub_idx)
		return;
	barrier();      /* x86: stores are not reordered with older stores */
	q->avail->idx = q->avail_idx;
	mb();           /* the idx store before the avail_event / flags load */
	uint16_t old = q->pub_idx, new_idx = q->avail_idx;
	q->pub_idx = new_idx;
	int kick;
	if (q->dev->event_idx)
		kick = need_event(*(volatile uint16_t *)((uintptr_t)q->used + 4 + 8 * (uintptr_t)q->num), new_idx, old);
	else
		kick = !(q->used->flags & VRING_USED_F_NO_NOTIFY);
	if (kick) {
		vm_write(q->dev, VM_QUEUE_NOTIFY, q->index);
		q->dev->kicks++;
	}
}

void vq_arm(struct vq *q)
{
	if (!q->num)
		return;
	if (q->dev->event_idx)
		q->avail->ring[q->num] = q->last_used;
	else
		q->avail->flags = 0;
	mb();
}

void vm_irq_poll(struct vmdev *d)
{
	if (!d->vector)
		return;
	uint64_t n = irq_counts[d->vector];
	if (n == d->irq_seen)
		return;
	d->irqs += n - d->irq_seen;
	d->irq_seen = n;
	uint32_t st = vm_read(d, VM_INT_STATUS);
	if (st)
		vm_write(d, VM_INT_ACK, st);
}
