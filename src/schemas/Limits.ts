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
