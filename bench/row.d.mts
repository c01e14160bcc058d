/** The benchmark row (row.mjs): ten full-precision doubles, built fresh for each call. */
export declare const row: (step: number) => {
  step: number
  loss: number
  acc: number
  lr: number
  grad_norm: number
  val_loss: number
  val_acc: number
  epoch: number
  tokens_per_s: number
  gpu_mem_gb: number
}
