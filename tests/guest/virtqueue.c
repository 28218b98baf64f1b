/*
 * Device initialisation over a transport (virtio 1.2 §3.1) and split
 * virtqueues (§2.7). Polling driver: used rings are read from memory;
 * interrupts are suppressed with used_event unless vq_arm() asks for one.
 */
#include "virtio.h"

/*
 * used_event while no interrupt is wanted: half the index space ahead of
 * what the driver has taken, which the device's used idx never reaches
 * (it stays within the ring size of it). One behind, the obvious "passed
 * already", is not: a device that publishes an entry and then checks
 * used_event sees it equal to its old idx whenever this polling driver
 * took the entry in between, and interrupts (vring_need_event), on
 * nearly every entry of an echo. Linux's driver writes 0 for this.
 */
#define USED_EVENT_OFF 0x8000

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

const char *vdev_where(struct vdev *d)
{
	static char buf[32];
	d->ops->where(d, buf, sizeof buf);
	return buf;
}

int vdev_begin(struct vdev *d, uint64_t want)
{
	const struct vtransport *t = d->ops;
	t->set_status(d, 0);                                        /* reset */
	for (int i = 0; i < 1000 && t->get_status(d); i++)
		cpu_relax();
	t->set_status(d, ST_ACKNOWLEDGE);
	t->set_status(d, ST_ACKNOWLEDGE | ST_DRIVER);
	uint64_t f = t->get_features(d);
	d->offered = f;
	if (!(f & F_VERSION_1)) {
		printf("guest: vs device at %s does not offer VERSION_1\n", vdev_where(d));
		t->set_status(d, ST_FAILED);
		return 0;
	}
	d->features = f & (want | F_VERSION_1);
	d->event_idx = !!(d->features & F_EVENT_IDX);
	t->set_features(d, d->features);
	t->set_status(d, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK);
	if (!(t->get_status(d) & ST_FEATURES_OK)) {
		printf("guest: vs device at %s rejected features 0x%lx\n", vdev_where(d), d->features);
		t->set_status(d, ST_FAILED);
		return 0;
	}
	return 1;
}

int vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t max_num)
{
	memset(q, 0, sizeof *q);
	q->dev = d;
	q->index = index;
	uint32_t nmax = d->ops->queue_max(d, index);
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
	/* No interrupts while polling: flag without event idx, a used_event far ahead with it. */
	q->avail->flags = d->event_idx ? 0 : VRING_AVAIL_F_NO_INTERRUPT;
	q->avail->ring[q->num] = (uint16_t)(q->last_used + USED_EVENT_OFF);
	d->ops->queue_setup(d, q);
	return 1;
}

void vdev_driver_ok(struct vdev *d)
{
	d->ops->set_status(d, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
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
	if (q->dev->event_idx)  /* keep used_event far ahead of us: no interrupt */
		q->avail->ring[q->num] = (uint16_t)(q->last_used + USED_EVENT_OFF);
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
		q->dev->ops->notify(q->dev, q);
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

void vdev_irq_poll(struct vdev *d)
{
	if (!d->vector)
		return;
	uint64_t n = irq_counts[d->vector];
	if (n == d->irq_seen)
		return;
	d->irqs += n - d->irq_seen;
	d->irq_seen = n;
	d->ops->irq_ack(d);
}
