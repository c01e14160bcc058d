/**
 * The progress-bar frames in what a child wrote to its terminal: each frame is a carriage return,
 * then `<label> <progressBar(acknowledged, total)>` (src/runtime/ProgressBar.ts), drawn
 * over the one before it.
 */
import { progressBar } from "../../src/runtime/ProgressBar.js"

/** One drawn frame: the counts it shows, and whether its text is exactly the bar of those counts. */
export interface Frame {
  readonly acknowledged: number
  readonly total: number
  readonly exact: boolean
  /** Where in the transcript its carriage return is. */
  readonly at: number
}

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")

/** Every frame of the bar labelled `label` in `transcript`, in the order drawn. */
export const progressFrames = (transcript: string, label: string): Array<Frame> =>
  [...transcript.matchAll(new RegExp(`\\r${escape(label)} (\\[[#-]*\\] +\\d+%  (\\d+)/(\\d+) records)`, "g"))].map((match) => {
    const acknowledged = Number(match[2])
    const total = Number(match[3])
    return { acknowledged, total, exact: match[1] === progressBar(acknowledged, total), at: match.index }
  })
