/**
 * The steps, seqs and ts that the keys of a run share in one chunk, stored once for all of them
 * (the stores' `history_frames`) rather than once a key: a run logging ten numbers a step
 * keeps 8 bytes a value instead of 32. A key's chunk is aligned with its frame when its entries
 * are the frame's first n entries: it then stores its values alone. A key logged at only some
 * steps, or a chunk that a late row re-ordered, keeps its own columns (historyChunk.ts).
 *
 * A frame only ever grows at its end, so a key aligned once stays aligned whatever later batches
 * bring to other keys. Pure data, no I/O.
 */

/** The shared columns of one chunk of a run: n entries, packed Float64s as historyChunk.ts packs them. */
export interface Frame {
  readonly n: number
  readonly steps: Uint8Array
  readonly seqs: Uint8Array
  readonly ts: Uint8Array
}

const startsWith = (whole: Uint8Array, part: Uint8Array, bytes: number): boolean =>
  whole === part || Buffer.compare(whole.subarray(0, bytes), part.subarray(0, bytes)) === 0

/** Whether `entries`' steps, seqs and ts are the first `entries.n` of `frame`'s. */
export const isAligned = (frame: Frame | undefined, entries: Frame): boolean =>
  frame !== undefined &&
  entries.n <= frame.n &&
  startsWith(frame.steps, entries.steps, entries.n * 8) &&
  startsWith(frame.seqs, entries.seqs, entries.n * 8) &&
  startsWith(frame.ts, entries.ts, entries.n * 8)

/**
 * The frame a chunk's keys share after a batch: the longest of the keys' merged entries that
 * begins with the current frame (all of it, when there is none yet), else the current frame.
 */
export const extend = (frame: Frame | undefined, merged: ReadonlyArray<Frame>): Frame | undefined => {
  let longest = frame
  for (const entries of merged) {
    if (longest !== undefined && entries.n <= longest.n) continue
    if (frame === undefined || isAligned(entries, frame)) longest = entries
  }
  return longest
}
