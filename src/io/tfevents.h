/* TensorBoard event files: scalar summaries in TFRecord framing, what TensorBoard reads from a run directory.
 *
 * A file is a sequence of records, each
 *     uint64 length (little-endian) | uint32 masked CRC32C of those 8 bytes | data | uint32 masked CRC32C of data
 * whose data is a serialized Event message (src/io/tfevents.proto, the public schema's field numbers). The first
 * record is Event{wall_time, file_version = "brain.Event:2"}; every later one here is one scalar,
 * Event{wall_time, step, summary{value{tag, simple_value}}}, as torch's SummaryWriter.add_scalar writes.
 *
 *   yt_tfevents *w = yt_tfevents_open("runs/detect/train", yt_tfevents_now());
 *   yt_tfevents_add_scalar(w, "train/box_loss", 1, 1.25f, yt_tfevents_now());   // queued in memory
 *   yt_tfevents_flush(w);                                                         // written to the file
 *   yt_tfevents_close(w);
 *
 * The file is only appended to, record by record: a reader (TensorBoard follows a growing file) or a crash sees
 * whole records up to the last flush. A failed write (a full disk) is cut back to the last whole record, so the
 * file stays readable. Functions return 0 or -1 with yt_error set (NULL for yt_tfevents_open). */
#ifndef YT_IO_TFEVENTS_H
#define YT_IO_TFEVENTS_H

#include <stddef.h>
#include <stdint.h>

/* The file_version string of the first record, as TensorFlow and TensorBoard write it. */
#define YT_TFEVENTS_FILE_VERSION "brain.Event:2"
/* The bytes a record adds around its data: the length, its CRC and the data's CRC. */
#define YT_TFRECORD_OVERHEAD 16
/* A tag longer than this is refused (TensorBoard shows tags as chart titles; this only bounds memory). */
#define YT_TFEVENTS_MAX_TAG 4096

/* CRC32C (Castagnoli, reflected polynomial 0x82F63B78), as TFRecord uses: yt_crc32c("123456789", 9) == 0xE3069283. */
uint32_t yt_crc32c(const void *data, size_t n);
/* TFRecord's masking of a CRC: ((crc >> 15) | (crc << 17)) + 0xa282ead8. */
uint32_t yt_tfrecord_mask(uint32_t crc);
/* Frames n bytes of data as one record into out, which has room for n + YT_TFRECORD_OVERHEAD bytes. */
void yt_tfrecord_frame(const void *data, size_t n, uint8_t *out);

typedef struct yt_tfevents yt_tfevents;

/* The wall clock (CLOCK_REALTIME) in seconds since the epoch, as events record it. */
double yt_tfevents_now(void);
/* Creates dir/events.out.tfevents.<wall_time as %010d>.<host>.<pid>.<n> (n counts the files this process opened,
 * from 0, as TensorFlow's writers do; an existing name is never overwritten) and writes its file_version record.
 * dir must exist. */
yt_tfevents *yt_tfevents_open(const char *dir, double wall_time);
/* The path of the file. */
const char *yt_tfevents_path(const yt_tfevents *w);
/* Queues one scalar (tag: 1..YT_TFEVENTS_MAX_TAG bytes) for the next flush. */
int yt_tfevents_add_scalar(yt_tfevents *w, const char *tag, int64_t step, float value, double wall_time);
/* Writes the queued records. On failure the file is cut back to its last whole record, the queued records are
 * dropped, and the error names the file and the reason. */
int yt_tfevents_flush(yt_tfevents *w);
/* Flushes, closes and frees (w may be NULL). Returns -1 when the flush or the close failed; w is freed either way. */
int yt_tfevents_close(yt_tfevents *w);

#endif
