/* virtio-console multiport protocol; see virtio_console.h. */
#include "virtio_console.h"
#include "virtio_mmio.h"
#include "virtio_pci.h"

#define CTRL_TX_BUFS    8
#define CTRL_TIMEOUT_MS 5000
#define SETTLE_MS       100         /* handshake done when the control queue is quiet this long */
#define SETTLE_MAX_MS   3000

struct vc_dev vc_devs[VC_MAX_DEVS];
int vc_ndevs;
static int inited;

/* Buffer memory: RX 128 x 4 KiB + TX 32 x 32 KiB per port, 31 ports, plus control. */
#define POOL_SIZE ((size_t)VC_MAX_PORTS * (VC_RX_BUFS * VC_RX_BUF + VC_TX_BUFS * VC_TX_BUF) + \
		   (size_t)VC_MAX_DEVS * (VC_CTRL_RX_BUFS * VC_RX_BUF + 4096))
static uint8_t pool[POOL_SIZE] __attribute__((aligned(4096)));
static size_t pool_used;
static int pool_warned;

static void *pool_alloc(size_t n)
{
	n = (n + 63) & ~(size_t)63;
	if (pool_used + n > sizeof pool) {
		if (!pool_warned++)
			printf("guest: vs buffer pool exhausted\n");
		return NULL;
	}
	void *p = pool + pool_used;
	pool_used += n;
	return p;
}

/* Give up to max slots of q a buffer of size bytes each (once per queue). */
static void attach_bufs(struct vq *q, int max, uint32_t size)
{
	if (!q || q->nbufs)
		return;
	int n = max < q->num ? max : q->num;
	for (int i = 0; i < n; i++) {
		void *b = pool_alloc(size);
		if (!b)
			break;
		vq_attach(q, (uint16_t)i, b, size);
	}
}

/* Post every free (device-writable) slot. */
static void post_rx(struct vq *q)
{
	int id;
	while ((id = vq_get_free(q)) >= 0)
		vq_add(q, (uint16_t)id, q->cap[id], 1);
}

static struct vq *ctrl_rx(struct vc_dev *d) { return &d->vqs[2]; }
static struct vq *ctrl_tx(struct vc_dev *d) { return &d->vqs[3]; }

static void ctrl_tx_reclaim(struct vq *q)
{
	uint32_t len;
	int id;
	while ((id = vq_used(q, &len)) >= 0)
		q->free[q->nfree++] = (uint16_t)id;
}

/* Like Linux __send_control_msg(): queue, kick, spin until the device took it. */
void vc_send_ctrl(struct vc_dev *d, uint32_t id, uint16_t event, uint16_t value)
{
	struct vq *q = ctrl_tx(d);
	uint64_t end = tsc_deadline_ms(CTRL_TIMEOUT_MS);
	int slot;
	for (;;) {
		ctrl_tx_reclaim(q);
		if ((slot = vq_get_free(q)) >= 0)
			break;
		if (rdtsc() > end)
			vs_device_error("control queue full for %u ms", CTRL_TIMEOUT_MS);
		cpu_relax();
	}
	struct vc_ctrl m = { id, event, value };
	memcpy(q->buf[slot], &m, sizeof m);
	vq_add(q, (uint16_t)slot, sizeof m, 0);
	vq_flush(q);
	while (q->inflight[slot]) {
		ctrl_tx_reclaim(q);
		if (rdtsc() > end)
			vs_device_error("control message (event %u port %u) not consumed in %u ms",
					event, id, CTRL_TIMEOUT_MS);
		cpu_relax();
	}
}

void vc_set_guest_open(struct vc_port *p, int open)
{
	vc_send_ctrl(p->dev, p->id, VC_PORT_OPEN, (uint16_t)!!open);
	p->guest_open = (uint8_t)!!open;
}

static void port_add(struct vc_dev *d, struct vc_port *p)
{
	if (p->added) {         /* repeated PORT_ADD: Linux just says ready again */
		vc_send_ctrl(d, p->id, VC_PORT_READY, 1);
		return;
	}
	if (!p->rx || !p->tx) {
		printf("guest: vs port %u has no queues\n", p->id);
		vc_send_ctrl(d, p->id, VC_PORT_READY, 0);
		return;
	}
	p->added = 1;
	p->console = p->host_open = p->guest_open = p->name_set = 0;
	p->name[0] = 0;
	if (!p->ever_added) {
		attach_bufs(p->rx, VC_RX_BUFS, VC_RX_BUF);
		attach_bufs(p->tx, VC_TX_BUFS, VC_TX_BUF);
		p->ever_added = 1;
	}
	post_rx(p->rx);         /* fill_queue() */
	vq_flush(p->rx);
	vc_send_ctrl(d, p->id, VC_PORT_READY, 1);
}

static void handle_ctrl(struct vc_dev *d, const uint8_t *buf, uint32_t len)
{
	struct vc_ctrl m;
	if (len < sizeof m) {
		printf("guest: vs control message of %u bytes ignored\n", len);
		return;
	}
	memcpy(&m, buf, sizeof m);
	if (m.id >= d->max_ports) {
		printf("guest: vs control event %u for port %u beyond max_ports %u ignored\n",
		       m.event, m.id, d->max_ports);
		return;
	}
	struct vc_port *p = &d->ports[m.id];
	if (m.event == VC_PORT_ADD) {
		port_add(d, p);
		return;
	}
	if (!p->added)          /* Linux: "Invalid index in control packet" */
		return;
	switch (m.event) {
	case VC_PORT_REMOVE:
		p->added = p->host_open = p->guest_open = 0;
		if (p->rx_cur >= 0) {   /* unread data is discarded, the buffer reposted */
			vq_add(p->rx, (uint16_t)p->rx_cur, p->rx->cap[p->rx_cur], 1);
			p->rx_cur = -1;
		}
		break;
	case VC_CONSOLE_PORT:
		if (!m.value || p->console)
			break;
		p->console = 1;         /* init_port_console(): opened by the guest */
		vc_set_guest_open(p, 1);
		break;
	case VC_PORT_OPEN:
		p->host_open = (uint8_t)!!m.value;
		break;
	case VC_PORT_NAME: {
		if (p->name_set)        /* Linux keeps the first name */
			break;
		uint32_t n = len - (uint32_t)sizeof m;
		if (n > sizeof p->name - 1)
			n = sizeof p->name - 1;
		memcpy(p->name, buf + sizeof m, n);
		p->name[n] = 0;
		for (uint32_t i = 0; i < n; i++)        /* printable in reports */
			if (p->name[i] == 0 || p->name[i] == ' ' || p->name[i] == '\n')
				p->name[i] = p->name[i] ? '_' : 0;
		p->name_set = 1;
		break;
	}
	default:                /* RESIZE and anything unknown */
		break;
	}
}

void vc_tx_reclaim(struct vc_port *p)
{
	uint32_t len;
	int id;
	if (!p->tx)
		return;
	while ((id = vq_used(p->tx, &len)) >= 0)
		p->tx->free[p->tx->nfree++] = (uint16_t)id;
}

void vc_poll(struct vc_dev *d)
{
	vdev_irq_poll(&d->m);
	if (d->m.features & F_CONSOLE_MULTIPORT) {
		struct vq *q = ctrl_rx(d);
		uint32_t len;
		int id;
		while ((id = vq_used(q, &len)) >= 0) {
			uint8_t msg[sizeof(struct vc_ctrl) + 64];
			uint32_t n = len < sizeof msg ? len : (uint32_t)sizeof msg;
			memcpy(msg, q->buf[id], n);
			vq_add(q, (uint16_t)id, q->cap[id], 1);  /* repost first: QEMU drops messages without buffers */
			vq_flush(q);
			d->ctrl_msgs++;
			d->last_ctrl = rdtsc();
			handle_ctrl(d, msg, len);
		}
	}
	for (uint32_t i = 0; i < d->max_ports; i++)
		if (d->ports[i].ever_added)
			vc_tx_reclaim(&d->ports[i]);
}

void vc_flush(struct vc_dev *d)
{
	for (uint32_t i = 0; i < 2 * (d->max_ports + 1); i++)
		if (d->vqs[i].num)
			vq_flush(&d->vqs[i]);
}

uint32_t vc_rx_peek(struct vc_port *p, const uint8_t **data)
{
	if (!p->rx)
		return 0;
	while (p->rx_cur < 0) {
		uint32_t len;
		int id = vq_used(p->rx, &len);
		if (id < 0)
			return 0;
		if (!len) {
			vq_add(p->rx, (uint16_t)id, p->rx->cap[id], 1);
			continue;
		}
		p->rx_cur = id;
		p->rx_off = 0;
		p->rx_len = len;
	}
	*data = p->rx->buf[p->rx_cur] + p->rx_off;
	return p->rx_len - p->rx_off;
}

void vc_rx_consume(struct vc_port *p, uint32_t n)
{
	p->rx_off += n;
	if (p->rx_off >= p->rx_len) {
		vq_add(p->rx, (uint16_t)p->rx_cur, p->rx->cap[p->rx_cur], 1);
		p->rx_cur = -1;
	}
}

int vc_tx_get(struct vc_port *p, uint8_t **buf)
{
	if (!p->tx)
		return -1;
	int id = vq_get_free(p->tx);
	if (id >= 0)
		*buf = p->tx->buf[id];
	return id;
}

void vc_tx_submit(struct vc_port *p, int slot, uint32_t len)
{
	vq_add(p->tx, (uint16_t)slot, len, 0);
}

struct vc_port *vc_find_port(const char *name)
{
	if (name[0] == '#') {
		uint64_t id;
		if (!parse_u64(name + 1, &id))
			return NULL;
		for (int i = 0; i < vc_ndevs; i++)
			if (id < vc_devs[i].max_ports && vc_devs[i].ports[id].added)
				return &vc_devs[i].ports[id];
		return NULL;
	}
	for (int i = 0; i < vc_ndevs; i++)
		for (uint32_t j = 0; j < vc_devs[i].max_ports; j++) {
			struct vc_port *p = &vc_devs[i].ports[j];
			if (p->added && p->name_set && !strcmp(p->name, name))
				return p;
		}
	return NULL;
}

/* d->m is bound to a transport: negotiate, set up every queue, DRIVER_OK. */
static int dev_init(struct vc_dev *d)
{
	if (!vdev_begin(&d->m, F_VERSION_1 | F_CONSOLE_MULTIPORT | F_EVENT_IDX))
		return 0;
	int multi = !!(d->m.features & F_CONSOLE_MULTIPORT);
	d->cfg_max_ports = multi ? d->m.ops->cfg_read(&d->m, 4, 4) : 1;
	d->max_ports = d->cfg_max_ports;
	if (d->max_ports > VC_MAX_PORTS) {
		printf("guest: vs max_nr_ports %u, using %u\n", d->max_ports, VC_MAX_PORTS);
		d->max_ports = VC_MAX_PORTS;
	}
	if (!d->max_ports)
		d->max_ports = 1;
	/* init_vqs(): all queues now, as Linux does (queues cannot be added after DRIVER_OK). */
	int ok = vq_setup(&d->m, &d->vqs[0], 0, VQ_MAX) & vq_setup(&d->m, &d->vqs[1], 1, VQ_MAX);
	if (multi)
		ok &= vq_setup(&d->m, &d->vqs[2], 2, VQ_MAX) & vq_setup(&d->m, &d->vqs[3], 3, VQ_MAX);
	if (!ok) {
		printf("guest: vs device at %s lacks port 0 or control queues\n", vdev_where(&d->m));
		d->m.ops->set_status(&d->m, ST_FAILED);
		return 0;
	}
	for (uint32_t n = 0; n < d->max_ports; n++) {
		struct vc_port *p = &d->ports[n];
		p->dev = d;
		p->id = n;
		p->rx_cur = -1;
		uint16_t rq = n ? (uint16_t)(2 + 2 * n) : 0;
		if (n && !(vq_setup(&d->m, &d->vqs[rq], rq, VQ_MAX) & vq_setup(&d->m, &d->vqs[rq + 1], (uint16_t)(rq + 1), VQ_MAX)))
			continue;
		p->rx = &d->vqs[rq];
		p->tx = &d->vqs[rq + 1];
	}
	if (multi) {
		attach_bufs(ctrl_rx(d), VC_CTRL_RX_BUFS, VC_RX_BUF);
		attach_bufs(ctrl_tx(d), CTRL_TX_BUFS, 64);
		post_rx(ctrl_rx(d));
	}
	vdev_driver_ok(&d->m);
	char where[64];
	d->m.ops->describe(&d->m, where, sizeof where);
	printf("guest: vs dev %d %s features=0x%lx ring=%u\n", d->index,
	       where, d->m.features, d->vqs[0].num);
	if (multi) {
		vq_flush(ctrl_rx(d));
		d->last_ctrl = rdtsc();
		vc_send_ctrl(d, 0xffffffffu, VC_DEVICE_READY, 1);       /* VIRTIO_CONSOLE_BAD_ID */
	} else {                /* single port 0: a console, always connected */
		struct vc_port *p = &d->ports[0];
		p->added = p->ever_added = 1;
		p->console = p->host_open = p->guest_open = 1;
		attach_bufs(p->rx, VC_RX_BUFS, VC_RX_BUF);
		attach_bufs(p->tx, VC_TX_BUFS, VC_TX_BUF);
		post_rx(p->rx);
		vq_flush(p->rx);
	}
	return 1;
}

int vc_init(void)
{
	if (inited)
		return vc_ndevs;
	inited = 1;
	tsc_khz();
	struct vm_cmdline_dev cd[16];
	int n = vm_cmdline_devices(cd, 16);
	for (int i = 0; i < n && vc_ndevs < VC_MAX_DEVS; i++) {
		struct vc_dev *d = &vc_devs[vc_ndevs];
		memset(d, 0, sizeof *d);
		d->index = vc_ndevs;
		if (vm_probe(&d->m, &cd[i], VIRTIO_ID_CONSOLE) && dev_init(d))
			vc_ndevs++;
	}
	int npci = 0;
	while (vc_ndevs < VC_MAX_DEVS) {
		struct vc_dev *d = &vc_devs[vc_ndevs];
		memset(d, 0, sizeof *d);
		d->index = vc_ndevs;
		if (!vpci_next(&d->m, VIRTIO_ID_CONSOLE))
			break;
		npci++;
		if (dev_init(d))
			vc_ndevs++;
	}
	if (!vc_ndevs) {
		printf("guest: vs no virtio-console device (%d virtio_mmio.device words, %d PCI)\n", n, npci);
		return 0;
	}
	/* Wait for PORT_ADD / PORT_NAME / PORT_OPEN to settle. */
	uint64_t khz = tsc_khz(), start = rdtsc();
	for (;;) {
		uint64_t last = start;
		for (int i = 0; i < vc_ndevs; i++) {
			vc_poll(&vc_devs[i]);
			vc_flush(&vc_devs[i]);
			if (vc_devs[i].last_ctrl > last)
				last = vc_devs[i].last_ctrl;
		}
		uint64_t now = rdtsc();
		if (now - last > SETTLE_MS * khz || now - start > SETTLE_MAX_MS * khz)
			break;
		cpu_relax();
	}
	return vc_ndevs;
}
