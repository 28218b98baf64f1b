/*
 * virtio-console (virtio-serial multiport) driver modelled on Linux's
 * drivers/char/virtio_console.c: every queue is set up at probe time,
 * DEVICE_READY first, PORT_ADD -> fill the port's RX queue with
 * PAGE_SIZE buffers + PORT_READY(1), each write one TX buffer of up to
 * 32 KiB, control messages sent synchronously (spin until consumed).
 */
#ifndef VIRTIO_CONSOLE_H
#define VIRTIO_CONSOLE_H

#include "virtio.h"

#define VC_MAX_DEVS     4
#define VC_MAX_PORTS    31          /* queues 0..63 */
#define VC_RX_BUF       4096
#define VC_RX_BUFS      128         /* per port, at most the ring size */
#define VC_TX_BUF       32768
#define VC_TX_BUFS      32          /* per port: 1 MiB in flight (Linux keeps up to the ring size of 32 KiB writes) */
#define VC_CTRL_RX_BUFS 32

#define VIRTIO_ID_CONSOLE 3
#define F_CONSOLE_SIZE      (1ull << 0)
#define F_CONSOLE_MULTIPORT (1ull << 1)
#define F_CONSOLE_EMERG     (1ull << 2)

enum {
	VC_DEVICE_READY = 0, VC_PORT_ADD, VC_PORT_REMOVE, VC_PORT_READY,
	VC_CONSOLE_PORT, VC_RESIZE, VC_PORT_OPEN, VC_PORT_NAME,
};

struct vc_ctrl {
	uint32_t id;
	uint16_t event, value;
} __attribute__((packed));

struct vc_dev;

struct vc_port {
	struct vc_dev *dev;
	uint32_t id;
	uint8_t added;          /* PORT_ADD seen and not removed */
	uint8_t ever_added;     /* RX buffers have been posted */
	uint8_t console;        /* CONSOLE_PORT seen */
	uint8_t host_open;      /* last PORT_OPEN value from the device */
	uint8_t guest_open;     /* last PORT_OPEN value we sent */
	uint8_t name_set;
	char name[64];
	struct vq *rx, *tx;
	uint64_t rx_pos, tx_pos;/* stream offsets (pattern index) per direction */
	int rx_cur;             /* used RX slot being consumed, -1 if none */
	uint32_t rx_off, rx_len;
};

struct vc_dev {
	struct vdev m;          /* over virtio-mmio or virtio-pci */
	int index;
	uint32_t max_ports;     /* ports with queues (config max_nr_ports, clamped) */
	uint32_t cfg_max_ports; /* as the device reported it */
	uint64_t ctrl_msgs;     /* control messages received */
	uint64_t last_ctrl;     /* rdtsc of the last one */
	struct vq vqs[2 * (VC_MAX_PORTS + 1)];
	struct vc_port ports[VC_MAX_PORTS];
};

extern struct vc_dev vc_devs[VC_MAX_DEVS];
extern int vc_ndevs;

/* Probe the command line's mmio devices and bus 0's PCI ones once (and wait for the port handshake). */
int vc_init(void);
/* Control RX, TX reclaim, interrupts: one pass over a device. */
void vc_poll(struct vc_dev *d);
/* Publish posted buffers of every queue (kicking where needed). */
void vc_flush(struct vc_dev *d);
void vc_send_ctrl(struct vc_dev *d, uint32_t id, uint16_t event, uint16_t value);
void vc_set_guest_open(struct vc_port *p, int open);

/* RX: bytes available in the current buffer (0 if none), then consume. */
uint32_t vc_rx_peek(struct vc_port *p, const uint8_t **data);
void vc_rx_consume(struct vc_port *p, uint32_t n);
/* TX: a free buffer slot (-1 if none) and its memory; submit len bytes of it. */
int vc_tx_get(struct vc_port *p, uint8_t **buf);
void vc_tx_submit(struct vc_port *p, int slot, uint32_t len);
void vc_tx_reclaim(struct vc_port *p);
static inline int vc_tx_inflight(struct vc_port *p) { return p->tx ? p->tx->inflight_n : 0; }

/* "#N" (port id) or a PORT_NAME; NULL if none matches. */
struct vc_port *vc_find_port(const char *name);

#endif
