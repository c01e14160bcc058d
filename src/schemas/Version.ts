/**
 * This package's version (from its package.json, two levels above this file in src/ and dist/
 * alike), and the upload protocol it speaks: what a run record, `steplog --version` and a
 * server's `whoami` say.
 */
import { createRequire } from "node:module"

export const STEPLOG_VERSION: string = (createRequire(import.meta.url)("../../package.json") as { version: string }).version

/**
 * The upload protocol's version. 2: `whoami` states the server's version, protocol, the record
 * kinds it stores and its routes, so that a client keeps back what an older server cannot take.
 * A server that states none speaks 1.
 */
export const PROTOCOL_VERSION = 2
