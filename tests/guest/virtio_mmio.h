/*
 * virtio-mmio (version 2) transport and split virtqueues, driven entirely
 * from CPL3 by polling. Every register access is a VM exit, so the ring
 * code touches MMIO only to kick (QueueNotify) and, when interrupts are
 * wanted, to read and acknowledge InterruptStatus.
 */
#ifndef VIRTIO_MMIO_H
#define VIRTIO_MMIO_H

#include "guest.h"

/* Registers (virtio 1.2 §4.2.2). */
#define VM_MAGIC        0x000
#define VM_VERSION      0x004
#define VM_DEVICE_ID    0x008
#define VM_VENDOR_ID    0x00c
#define VM_DEV_FEAT     0x010
#define VM_DEV_FEAT_SEL 0x014
#define VM_DRV_FEAT     0x020
#define VM_DRV_FEAT_SEL 0x024
#define VM_QUEUE_SEL    0x030
#define VM_QUEUE_NUM_MAX 0x034
#define VM_QUEUE_NUM    0x038
#define VM_QUEUE_READY  0x044
#define VM_QUEUE_NOTIFY 0x050
#define VM_INT_STATUS   0x060
#define VM_INT_ACK      0x064
#define VM_STATUS       0x070
#define VM_QUEUE_DESC   0x080   /* low, high at +4 */
#define VM_QUEUE_DRIVER 0x090
#define VM_QUEUE_DEVICE 0x0a0
#define VM_CONFIG_GEN   0x0fc
#define VM_CONFIG       0x100

#define VIRT_MAGIC      0x74726976  /* "virt" */

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

struct vmdev {
	uintptr_t base;
	uint64_t size;
	uint32_t irq;
	uint32_t device_id;
	uint64_t offered, features;     /* device features, negotiated features */
	int event_idx;
	uint64_t kicks;                 /* QueueNotify writes */
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
	struct vmdev *dev;
	uint16_t index, num;            /* queue index, ring size (0: absent) */
	uint16_t nbufs;                 /* slots with a buffer */
	uint16_t avail_idx;             /* next avail->idx */
	uint16_t pub_idx;               /* avail->idx last published */
	uint16_t last_used;
	uint16_t nfree;
	uint16_t inflight_n;
	volatile struct vring_desc *desc;
	volatile struct vring_avail *avail;
	volatile struct vring_used *used;
	uint8_t *buf[VQ_MAX];
	uint32_t cap[VQ_MAX];
	uint8_t inflight[VQ_MAX];
	uint16_t free[VQ_MAX];
};

/* Devices named by virtio_mmio.device=<size>@<base>:<irq> words. */
struct vm_cmdline_dev {
	uint64_t size, base;
	uint32_t irq;
};
int vm_cmdline_devices(struct vm_cmdline_dev *out, int max);
int vm_parse_size(const char *s, const char **end, uint64_t *out);

/*
 * Reset, ACKNOWLEDGE, DRIVER, features (want & offered, VERSION_1
 * required), FEATURES_OK. Returns 1 on success; on failure prints why.
 */
int vm_begin(struct vmdev *d, uint32_t device_id, uint64_t want);
/* QueueSel/Num/addresses/Ready; 0 if the queue does not exist. */
int vq_setup(struct vmdev *d, struct vq *q, uint16_t index, uint16_t max_num);
void vm_driver_ok(struct vmdev *d);
static inline uint32_t vm_read(struct vmdev *d, uint32_t reg) { return mmio_read32(d->base + reg); }
static inline void vm_write(struct vmdev *d, uint32_t reg, uint32_t v) { mmio_write32(d->base + reg, v); }

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
/* Read InterruptStatus and acknowledge it if interrupts are on and one arrived. */
void vm_irq_poll(struct vmdev *d);

NORETURN void vs_device_error(const char *fmt, ...);

static inline void mb(void) { __asm__ volatile("lock; addl $0,(%%rsp)" ::: "memory", "cc"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

#endif
