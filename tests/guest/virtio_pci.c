/* virtio-pci modern transport; see virtio_pci.h. */
#include "virtio_pci.h"
#include "msix.h"

/* Vendor capability cfg_type (§4.1.4). */
#define CAP_COMMON      1
#define CAP_NOTIFY      2
#define CAP_ISR         3
#define CAP_DEVICE      4

/* struct virtio_pci_common_cfg (§4.1.4.3). */
#define CC_DFSELECT     0x00
#define CC_DF           0x04
#define CC_GFSELECT     0x08
#define CC_GF           0x0c
#define CC_MSIX         0x10
#define CC_NUMQ         0x12
#define CC_STATUS       0x14
#define CC_CFGGEN       0x15
#define CC_Q_SELECT     0x16
#define CC_Q_SIZE       0x18
#define CC_Q_MSIX       0x1a
#define CC_Q_ENABLE     0x1c
#define CC_Q_NOFF       0x1e
#define CC_Q_DESC       0x20
#define CC_Q_DRIVER     0x28
#define CC_Q_DEVICE     0x30

#define MAX_FUNCS       64

struct vpci {
	struct pci_dev pci;
	uintptr_t common, notify, isr, devcfg;
	uint64_t notify_len;
	uint32_t notify_mult;
	uint16_t numq;
	struct msix msix;
	int use_msix;           /* MSI-X enabled and vectors assigned */
	int vectors_set;        /* config vector written since the last reset */
	uint16_t qvec;          /* MSI-X entry for every queue (entry 0: config) */
	uint32_t refused;       /* vector assignments the device refused */
};

int vpci_use_msix = 1;
static struct vpci vpcis[4];
static int nvpcis;
static struct pci_dev funcs[MAX_FUNCS];
static int nfuncs = -1, cursor;

static struct vpci *P(struct vdev *d) { return d->priv; }

static uint32_t pc_cfg_read(struct vdev *d, uint32_t off, int width)
{
	uintptr_t a = P(d)->devcfg + off;
	return width == 1 ? mmio_read8(a) : width == 2 ? mmio_read16(a) : mmio_read32(a);
}

static void pc_cfg_write(struct vdev *d, uint32_t off, uint32_t v, int width)
{
	uintptr_t a = P(d)->devcfg + off;
	if (width == 1)
		mmio_write8(a, (uint8_t)v);
	else if (width == 2)
		mmio_write16(a, (uint16_t)v);
	else
		mmio_write32(a, v);
}

static uint64_t pc_get_features(struct vdev *d)
{
	uintptr_t c = P(d)->common;
	mmio_write32(c + CC_DFSELECT, 0);
	uint64_t f = mmio_read32(c + CC_DF);
	mmio_write32(c + CC_DFSELECT, 1);
	return f | (uint64_t)mmio_read32(c + CC_DF) << 32;
}

static void pc_set_features(struct vdev *d, uint64_t f)
{
	uintptr_t c = P(d)->common;
	mmio_write32(c + CC_GFSELECT, 0);
	mmio_write32(c + CC_GF, (uint32_t)f);
	mmio_write32(c + CC_GFSELECT, 1);
	mmio_write32(c + CC_GF, (uint32_t)(f >> 32));
}

static uint8_t pc_get_status(struct vdev *d) { return mmio_read8(P(d)->common + CC_STATUS); }

static void pc_set_status(struct vdev *d, uint8_t s)
{
	if (!s)                 /* reset forgets every MSI-X vector assignment */
		P(d)->vectors_set = 0;
	mmio_write8(P(d)->common + CC_STATUS, s);
}

static uint16_t pc_queue_max(struct vdev *d, uint16_t index)
{
	uintptr_t c = P(d)->common;
	if (index >= P(d)->numq)
		return 0;
	mmio_write16(c + CC_Q_SELECT, index);
	if (mmio_read16(c + CC_Q_ENABLE))
		return 0;
	return mmio_read16(c + CC_Q_SIZE);
}

/* Write an MSI-X vector register and read it back: VIRTIO_NO_VECTOR means refused. */
static void set_vector(struct vpci *v, uintptr_t reg, uint16_t vec, const char *what, unsigned q)
{
	mmio_write16(reg, vec);
	uint16_t got = mmio_read16(reg);
	if (got != vec) {
		v->refused++;
		printf("guest: vs pci %02x:%02x.%x refused MSI-X vector %u for %s %u (read 0x%x)\n",
		       v->pci.bus, v->pci.dev, v->pci.fn, vec, what, q, got);
	}
}

static void pc_queue_setup(struct vdev *d, struct vq *q)
{
	struct vpci *v = P(d);
	uintptr_t c = v->common;
	if (v->use_msix && !v->vectors_set) {   /* as Linux vp_find_vqs(): config first */
		set_vector(v, c + CC_MSIX, 0, "config", 0);
		v->vectors_set = 1;
	}
	mmio_write16(c + CC_Q_SELECT, q->index);        /* as pc_queue_max left it, but be sure */
	mmio_write16(c + CC_Q_SIZE, q->num);
	mmio_write32(c + CC_Q_DESC, (uint32_t)(uintptr_t)q->desc);
	mmio_write32(c + CC_Q_DESC + 4, 0);
	mmio_write32(c + CC_Q_DRIVER, (uint32_t)(uintptr_t)q->avail);
	mmio_write32(c + CC_Q_DRIVER + 4, 0);
	mmio_write32(c + CC_Q_DEVICE, (uint32_t)(uintptr_t)q->used);
	mmio_write32(c + CC_Q_DEVICE + 4, 0);
	if (v->use_msix)
		set_vector(v, c + CC_Q_MSIX, v->qvec, "queue", q->index);
	uint64_t off = (uint64_t)mmio_read16(c + CC_Q_NOFF) * v->notify_mult;
	if (off + 2 > v->notify_len)
		vs_device_error("queue %u notify offset 0x%lx beyond the notify region (0x%lx)",
				q->index, off, v->notify_len);
	q->notify_addr = v->notify + (uintptr_t)off;
	mmio_write16(c + CC_Q_ENABLE, 1);
}

static void pc_notify(struct vdev *d, struct vq *q)
{
	(void)d;
	mmio_write16(q->notify_addr, q->index);
}

static void pc_irq_ack(struct vdev *d)
{
	if (!P(d)->use_msix)
		(void)mmio_read8(P(d)->isr);    /* reading clears it and deasserts INTx */
}

static void pc_irq_route(struct vdev *d, uint8_t vector, uint8_t apic, int on)
{
	struct vpci *v = P(d);
	if (v->use_msix) {
		msix_set(&v->msix, 0, apic, vector, !on);
		if (v->qvec)
			msix_set(&v->msix, v->qvec, apic, vector, !on);
		return;
	}
	uint32_t base;
	int pin;
	ioapic_for_gsi(d->irq, &base, &pin);
	ioapic_route(base, pin, vector, apic, !on);
	(void)mmio_read8(v->isr);       /* a stale level would hide the next edge */
}

static int pc_where(struct vdev *d, char *buf, size_t n)
{
	const struct pci_dev *p = &P(d)->pci;
	return snprintf(buf, n, "%02x:%02x.%x", p->bus, p->dev, p->fn);
}

static int pc_describe(struct vdev *d, char *buf, size_t n)
{
	const struct pci_dev *p = &P(d)->pci;
	return snprintf(buf, n, "pci=%02x:%02x.%x msix=%d", p->bus, p->dev, p->fn, P(d)->use_msix);
}

static const struct vtransport pci_ops = {
	.cfg_read = pc_cfg_read, .cfg_write = pc_cfg_write,
	.get_features = pc_get_features, .set_features = pc_set_features,
	.get_status = pc_get_status, .set_status = pc_set_status,
	.queue_max = pc_queue_max, .queue_setup = pc_queue_setup,
	.notify = pc_notify, .irq_ack = pc_irq_ack, .irq_route = pc_irq_route,
	.describe = pc_describe, .where = pc_where,
};

/* The first vendor capability of each type with a usable BAR range (§4.1.4.1). */
static int find_caps(struct vpci *v)
{
	const struct pci_dev *p = &v->pci;
	for (uint8_t cap = pci_find_cap(p, PCI_CAP_VENDOR, 0); cap;
	     cap = pci_find_cap(p, PCI_CAP_VENDOR, cap)) {
		uint32_t w0 = pci_cfg32(p, cap), w1 = pci_cfg32(p, (uint8_t)(cap + 4));
		uint8_t type = (uint8_t)(w0 >> 24), bar = (uint8_t)w1;
		uint32_t off = pci_cfg32(p, (uint8_t)(cap + 8)), len = pci_cfg32(p, (uint8_t)(cap + 12));
		if (bar > 5 || !p->bar[bar] || (uint64_t)off + len > p->bar_size[bar])
			continue;
		uintptr_t a = (uintptr_t)(p->bar[bar] + off);
		switch (type) {
		case CAP_COMMON:
			if (!v->common && len >= 0x38)
				v->common = a;
			break;
		case CAP_NOTIFY:
			if (!v->notify) {
				v->notify = a;
				v->notify_len = len;
				v->notify_mult = pci_cfg32(p, (uint8_t)(cap + 16));
			}
			break;
		case CAP_ISR:
			if (!v->isr && len >= 1)
				v->isr = a;
			break;
		case CAP_DEVICE:
			if (!v->devcfg)
				v->devcfg = a;
			break;
		}
	}
	return v->common && v->notify && v->isr;
}

/* Modern capabilities present (transitional devices): a COMMON_CFG vendor cap. */
static int has_modern_caps(const struct pci_dev *p)
{
	for (uint8_t cap = pci_find_cap(p, PCI_CAP_VENDOR, 0); cap;
	     cap = pci_find_cap(p, PCI_CAP_VENDOR, cap))
		if (pci_cfg8(p, (uint8_t)(cap + 3)) == CAP_COMMON)
			return 1;
	return 0;
}

/* Transitional PCI device ids (§4.1.2.3) of the virtio ids we drive. */
static uint16_t transitional_id(uint32_t device_id)
{
	return device_id == 3 ? 0x1003 : 0;     /* console */
}

static int bind(struct vdev *d, struct vpci *v, uint32_t device_id)
{
	struct pci_dev *p = &v->pci;
	pci_setup_bars(p);
	if (!find_caps(v)) {
		printf("guest: vs pci %02x:%02x.%x lacks common/notify/isr capabilities\n",
		       p->bus, p->dev, p->fn);
		return 0;
	}
	v->numq = mmio_read16(v->common + CC_NUMQ);
	int have_msix = msix_probe(p, &v->msix);
	v->use_msix = have_msix && vpci_use_msix && v->msix.nvec >= 1;
	v->qvec = v->use_msix && v->msix.nvec >= 2 ? 1 : 0;
	uint16_t cmd = pci_cfg16(p, PCI_COMMAND);
	if (v->use_msix) {
		msix_set(&v->msix, 0, 0, 0, 1);
		if (v->qvec)
			msix_set(&v->msix, v->qvec, 0, 0, 1);
		msix_enable(p, &v->msix, 1);
	} else {
		if (have_msix)
			msix_enable(p, &v->msix, 0);
		pci_set16(p, PCI_COMMAND, (uint16_t)(cmd & ~PCI_CMD_INTX_OFF));
	}
	d->ops = &pci_ops;
	d->priv = v;
	d->irq = p->int_line;
	int guessed = 0;
	if ((p->int_line == 0 || p->int_line == 0xff) && p->int_pin) {
		/*
		 * No firmware wrote the line (our VMM names the GSI only in
		 * ACPI _PRT): its wiring, INTA# of slot s on GSI 16 + s % 8.
		 */
		d->irq = 16 + (uint32_t)(p->dev + p->int_pin - 1) % 8;
		guessed = 1;
	}
	d->device_id = device_id;
	printf("guest: vs pci %02x:%02x.%x id=%04x:%04x bars", p->bus, p->dev, p->fn, p->vendor, p->device);
	for (int i = 0; i < 6; i++)
		if (p->bar[i])
			printf(" %d=0x%lx%s", i, p->bar[i], p->bar_moved[i] ? "(assigned)" : "");
	printf(" queues=%u notify_mult=%u msix_vectors=%u line=%u pin=%u gsi=%u%s\n", v->numq,
	       v->notify_mult, have_msix ? v->msix.nvec : 0, p->int_line, p->int_pin, d->irq,
	       guessed ? "(assumed: line unset)" : "");
	return 1;
}

int vpci_next(struct vdev *d, uint32_t device_id)
{
	if (nfuncs < 0)
		nfuncs = pci_present() ? pci_scan(funcs, MAX_FUNCS) : 0;
	while (cursor < nfuncs && nvpcis < (int)(sizeof vpcis / sizeof vpcis[0])) {
		struct pci_dev *p = &funcs[cursor++];
		if (p->vendor != VIRTIO_PCI_VENDOR)
			continue;
		int modern = p->device == 0x1040 + device_id;
		if (!modern && !(p->device == transitional_id(device_id) && has_modern_caps(p)))
			continue;
		struct vpci *v = &vpcis[nvpcis];
		memset(v, 0, sizeof *v);
		v->pci = *p;
		if (bind(d, v, device_id)) {
			nvpcis++;
			return 1;
		}
	}
	return 0;
}
