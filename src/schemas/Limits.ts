/**
 * Caps on what one request may make the server read or hold, shared by the server's store, its
 * HTTP layer and the SDK, so that each side states the same numbers. Each cap bounds one answer,
 * never what a run may hold: a longer read is paged (`History.next`, `OutputLines.next`).
 */

/**
 * Rows one `history` answer without `samples` holds at most (a row is one step, every key read);
 * `next` names the `minStep` of the following page. Bounds the answer of a million-step run to a
 * page of a few MB of JSON instead of 120 MB.
 */
export const HISTORY_PAGE_ROWS = 10_000

/**
 * Bytes of console text one `output` answer holds at most, on top of its line limit: at least one
 * line, then lines while their text stays under this many bytes (UTF-16 code units, as JSON.stringify
 * sees them). Two 61 KB gzip uploads of repeated text once made a 120 MB answer.
 */
export const OUTPUT_PAGE_BYTES = 1024 * 1024

/**
 * History keys one run may have. `log()` drops a key past it (one warning names it) and the server
 * refuses a batch that would take a run past it: one row of 100,000 keys once held a server for
 * 5 s, and three of them grew it by a gigabyte it never gave back.
 */
export const MAX_KEYS_PER_RUN = 10_000

/** Characters of a history key. */
export const MAX_KEY_LENGTH = 256

/**
 * UTF-8 bytes of one string value in history and of one console output record's text. `log()`
 * drops a longer string value (with a warning), and console capture cuts longer text into records
 * of at most this many bytes; the server refuses either.
 */
export const MAX_VALUE_BYTES = 64 * 1024

/** Whether `text` is over MAX_VALUE_BYTES of UTF-8: a cheap length test first, bytes counted only near the limit. */
export const overValueBytes = (text: string): boolean =>
  text.length > MAX_VALUE_BYTES / 3 && Buffer.byteLength(text, "utf8") > MAX_VALUE_BYTES

/**
 * What one record breaks of the limits a record alone can break (a key's length, a value's size,
 * more keys than a run may have), or undefined: the server refuses such a record whole.
 */
export const overLimit = (record: {
  readonly kind: string
  readonly keys?: ReadonlyArray<string>
  readonly values?: { readonly [key: string]: unknown }
  readonly text?: string
}): string | undefined => {
  const keys = record.keys ?? (record.kind === "history" && record.values !== undefined ? Object.keys(record.values) : [])
  if (keys.length > MAX_KEYS_PER_RUN) return `it has ${keys.length} keys; a run may have ${MAX_KEYS_PER_RUN}`
  for (const key of keys) {
    if (key.length > MAX_KEY_LENGTH) return `its key "${key.slice(0, 40)}…" is ${key.length} characters long; a key may have ${MAX_KEY_LENGTH}`
    const value = record.kind === "history" ? record.values?.[key] : undefined
    if (typeof value === "string" && overValueBytes(value)) return `the value of its key "${key}" is over ${MAX_VALUE_BYTES} bytes`
  }
  if (record.kind === "output" && record.text !== undefined && overValueBytes(record.text)) return `its text is over ${MAX_VALUE_BYTES} bytes`
  return undefined
}

/**
 * Records one uploaded batch may hold, a history block counting as the rows it stands for: past it
 * the server answers 413, and the uploader sends the batch again in halves. The batch's msgpack
 * array header is read before anything is decoded, so a batch of half a million one-row records
 * (7.7 MB) is refused at once rather than holding the server while it is unpacked and checked;
 * a block's rows are counted once it is decoded (cheap: columns are not unpacked), since one of
 * half a million rows made a transaction whose commit held the server ~110 ms. The Tailer cuts
 * batches here; most are cut sooner, at 1 MiB.
 */
export const MAX_BATCH_RECORDS = 20_000
