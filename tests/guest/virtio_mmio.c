/* virtio-mmio transport (virtio 1.2 §4.2): register access for virtio.h's ops. */
#include "virtio_mmio.h"

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

static uint32_t mm_cfg_read(struct vdev *d, uint32_t off, int width)
{
	uintptr_t a = d->base + VM_CONFIG + off;
	return width == 1 ? mmio_read8(a) : width == 2 ? mmio_read16(a) : mmio_read32(a);
}

static void mm_cfg_write(struct vdev *d, uint32_t off, uint32_t v, int width)
{
	uintptr_t a = d->base + VM_CONFIG + off;
	if (width == 1)
		mmio_write8(a, (uint8_t)v);
	else if (width == 2)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, v);
}

static uint64_t mm_get_features(struct vdev *d)
{
	vm_write(d, VM_DEV_FEAT_SEL, 0);
	uint64_t f = vm_read(d, VM_DEV_FEAT);
	vm_write(d, VM_DEV_FEAT_SEL, 1);
	return f | (uint64_t)vm_read(d, VM_DEV_FEAT) << 32;
}

static void mm_set_features(struct vdev *d, uint64_t f)
{
	vm_write(d, VM_DRV_FEAT_SEL, 0);
	vm_write(d, VM_DRV_FEAT, (uint32_t)f);
	vm_write(d, VM_DRV_FEAT_SEL, 1);
	vm_write(d, VM_DRV_FEAT, (uint32_t)(f >> 32));
}

static uint8_t mm_get_status(struct vdev *d) { return (uint8_t)vm_read(d, VM_STATUS); }
static void mm_set_status(struct vdev *d, uint8_t s) { vm_write(d, VM_STATUS, s); }

static uint16_t mm_queue_max(struct vdev *d, uint16_t index)
{
	vm_write(d, VM_QUEUE_SEL, index);
	if (vm_read(d, VM_QUEUE_READY))
		return 0;
	uint32_t n = vm_read(d, VM_QUEUE_NUM_MAX);
	return n > 0xffff ? 0xffff : (uint16_t)n;
}

static void write64(struct vdev *d, uint32_t reg, uint64_t v)
{
	vm_write(d, reg, (uint32_t)v);
	vm_write(d, reg + 4, (uint32_t)(v >> 32));
}

static void mm_queue_setup(struct vdev *d, struct vq *q)
{
	/* QueueSel still names q->index (mm_queue_max). */
	vm_write(d, VM_QUEUE_NUM, q->num);
	write64(d, VM_QUEUE_DESC, (uintptr_t)q->desc);
	write64(d, VM_QUEUE_DRIVER, (uintptr_t)q->avail);
	write64(d, VM_QUEUE_DEVICE, (uintptr_t)q->used);
	vm_write(d, VM_QUEUE_READY, 1);
}

static void mm_notify(struct vdev *d, struct vq *q) { vm_write(d, VM_QUEUE_NOTIFY, q->index); }

static void mm_irq_ack(struct vdev *d)
{
	uint32_t st = vm_read(d, VM_INT_STATUS);
	if (st)
		vm_write(d, VM_INT_ACK, st);
}

static void mm_irq_route(struct vdev *d, uint8_t vector, uint8_t apic, int on)
{
	uint32_t base;
	int pin;
	ioapic_for_gsi(d->irq, &base, &pin);
	ioapic_route(base, pin, vector, apic, !on);
	mm_irq_ack(d);          /* a stale level would hide the next edge */
}

static int mm_describe(struct vdev *d, char *buf, size_t n)
{
	return snprintf(buf, n, "mmio=0x%lx irq=%u", (uint64_t)d->base, d->irq);
}

static int mm_where(struct vdev *d, char *buf, size_t n)
{
	return snprintf(buf, n, "0x%lx", (uint64_t)d->base);
}

static const struct vtransport mmio_ops = {
	.cfg_read = mm_cfg_read, .cfg_write = mm_cfg_write,
	.get_features = mm_get_features, .set_features = mm_set_features,
	.get_status = mm_get_status, .set_status = mm_set_status,
	.queue_max = mm_queue_max, .queue_setup = mm_queue_setup,
	.notify = mm_notify, .irq_ack = mm_irq_ack, .irq_route = mm_irq_route,
	.describe = mm_describe, .where = mm_where,
};

int vm_probe(struct vdev *d, const struct vm_cmdline_dev *c, uint32_t device_id)
{
	d->ops = &mmio_ops;
	d->base = (uintptr_t)c->base;
	d->size = c->size;
	d->irq = c->irq;
	uint32_t magic = vm_read(d, VM_MAGIC), ver = vm_read(d, VM_VERSION);
	d->device_id = vm_read(d, VM_DEVICE_ID);
	if (magic != VIRT_MAGIC || ver != 2 || d->device_id != device_id) {
		printf("guest: vs skip 0x%lx (magic 0x%x version %u device %u)\n", c->base,
		       magic, ver, d->device_id);
		return 0;
	}
	return 1;
}
