/*
 * Transport-independent virtio: device status and feature negotiation
 * over a transport's ops (virtio_mmio.c, virtio_pci.c), and split
 * virtqueues (virtqueue.c) driven from CPL3 by polling. Every transport
 * register access is a VM exit, so the ring code touches the transport
 * only to kick and, when interrupts are wanted, to acknowledge them.
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "guest.h"

/* Device status bits. */
#define ST_ACKNOWLEDGE  1
#define ST_DRIVER       2
#define ST_DRIVER_OK    4
#define ST_FEATURES_OK  8
#define ST_FAILED       128

#define F_EVENT_IDX     (1ull << 29)
#define F_VERSION_1     (1ull << 32)

#define VQ_MAX          256         /* ring entries we set up at most */
#define VRING_DESC_F_WRITE 2
#define VRING_AVAIL_F_NO_INTERRUPT 1
#define VRING_USED_F_NO_NOTIFY 1

/* Device errors (used id out of range, len too large, ...) end the guest. */
#define EXIT_VS_DEVICE  0xe2

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags, next;
};
struct vring_avail {
	uint16_t flags, idx;
	uint16_t ring[];            /* [num], then used_event */
};
struct vring_used_elem {
	uint32_t id, len;
};
struct vring_used {
	uint16_t flags, idx;
	struct vring_used_elem ring[];  /* [num], then avail_event */
};

struct vdev;
struct vq;

/* What a transport provides (virtio 1.2 §4.1 PCI, §4.2 MMIO). */
struct vtransport {
	uint32_t (*cfg_read)(struct vdev *d, uint32_t off, int width);     /* device config */
	void (*cfg_write)(struct vdev *d, uint32_t off, uint32_t v, int width);
	uint64_t (*get_features)(struct vdev *d);
	void (*set_features)(struct vdev *d, uint64_t f);
	uint8_t (*get_status)(struct vdev *d);
	void (*set_status)(struct vdev *d, uint8_t s);
	uint16_t (*queue_max)(struct vdev *d, uint16_t index);  /* 0: absent or already live */
	void (*queue_setup)(struct vdev *d, struct vq *q);      /* q->num and rings set: program, enable */
	void (*notify)(struct vdev *d, struct vq *q);
	void (*irq_ack)(struct vdev *d);                        /* after an interrupt was counted */
	void (*irq_route)(struct vdev *d, uint8_t vector, uint8_t apic, int on);
	int (*describe)(struct vdev *d, char *buf, size_t n);   /* "mmio=0x... irq=N" / "pci=BB:DD.F msix=M" */
	int (*where)(struct vdev *d, char *buf, size_t n);      /* "0x..." / "BB:DD.F" */
};

struct vdev {
	const struct vtransport *ops;
	uintptr_t base;                 /* virtio-mmio registers */
	uint64_t size;
	uint32_t irq;                   /* GSI (mmio, PCI INTx) */
	void *priv;                     /* transport state (virtio_pci.c) */
	uint32_t device_id;
	uint64_t offered, features;     /* device features, negotiated features */
	int event_idx;
	uint64_t kicks;                 /* notifications written */
	uint64_t irqs;                  /* interrupts seen (and acknowledged) */
	int vector;                     /* IDT vector when interrupts are on, else 0 */
	uint64_t irq_seen;              /* irq_counts[vector] already accounted */
};

/*
 * One split virtqueue. Every buffer is one descriptor and descriptor ids
 * are buffer slots 0..nbufs-1, so a used id names a slot directly; the
 * buffer pointers live here, not in the descriptor table the device sees.
 */
struct vq {
	struct vdev *dev;
	uint16_t index, num;            /* queue index, ring size (0: absent) */
	uint16_t nbufs;                 /* slots with a buffer */
	uint16_t avail_idx;             /* next avail->idx */
	uint16_t pub_idx;               /* avail->idx last published */
	uint16_t last_used;
	uint16_t nfree;
	uint16_t inflight_n;
	uintptr_t notify_addr;          /* PCI: where the queue index is written */
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint8_t *buf[VQ_MAX];
	uint32_t cap[VQ_MAX];
	uint8_t inflight[VQ_MAX];
	uint16_t free[VQ_MAX];
};

/*
 * Reset, ACKNOWLEDGE, DRIVER, features (want & offered, VERSION_1
 * required), FEATURES_OK. Returns 1 on success; on failure prints why.
 */
int vdev_begin(struct vdev *d, uint64_t want);
/* Ring memory, then the transport's queue registers; 0 if the queue does not exist. */
int vq_setup(struct vdev *d, struct vq *q, uint16_t index, uint16_t max_num);
void vdev_driver_ok(struct vdev *d);
const char *vdev_where(struct vdev *d);  /* where() into a static buffer */

/* Give slot id a buffer of cap bytes (before it is first added). */
void vq_attach(struct vq *q, uint16_t id, void *buf, uint32_t cap);
/* Slot bookkeeping: a free slot id, or -1. */
int vq_get_free(struct vq *q);
/* Post slot id with len bytes (writable: device writes it). Published by vq_flush. */
void vq_add(struct vq *q, uint16_t id, uint32_t len, int writable);
/* Next used buffer (validated; a bad one ends the guest): slot id, or -1. */
int vq_used(struct vq *q, uint32_t *len);
int vq_has_used(struct vq *q);
/* Publish added buffers and kick if the device asked for it. */
void vq_flush(struct vq *q);
/* Ask for an interrupt on the next used buffer (the driver is about to wait). */
void vq_arm(struct vq *q);
/* Count interrupts that arrived and acknowledge them at the transport. */
void vdev_irq_poll(struct vdev *d);

NORETURN void vs_device_error(const char *fmt, ...);

static inline void mb(void) { __asm__ volatile("lock; addl $0,(%%rsp)" ::: "memory", "cc"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

#endif
