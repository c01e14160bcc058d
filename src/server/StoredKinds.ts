/**
 * The record kinds this server stores, as `whoami` states them: every kind, unless the server was
 * started with some switched off (`ServerOptions.refuseKinds`), which is how a test plays an older
 * server that lacks a kind a newer SDK sends. A batch holding a kind not stored is refused whole.
 */
import * as Context from "effect/Context"
import * as Layer from "effect/Layer"
import { RECORD_KINDS, type RecordKind } from "../schemas/Record.js"

export class StoredKinds extends Context.Tag("steplog/server/StoredKinds")<StoredKinds, ReadonlySet<string>>() {}

/** Every kind but `refused`. */
export const layer = (refused: ReadonlyArray<RecordKind> = []) => Layer.succeed(StoredKinds, new Set(RECORD_KINDS.filter((kind) => !refused.includes(kind))))
