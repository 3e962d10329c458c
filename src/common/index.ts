// The bottom room: helpers that every other room may use (errors, logging, progress).
export { IppError, UsageError, isIppError, causeChain } from './errors.ts';
export { createLogger, silentLogger, LOG_LEVELS } from './log.ts';
export type { Logger, LogLevel, LogSink, LoggerOptions } from './log.ts';
export { createProgress, noProgress } from './progress.ts';
export type { Progress, ProgressOptions } from './progress.ts';
export { PACKAGE_ROOT, PSPS_SCHEMA_DIR } from './paths.ts';
export { readAt } from './read-at.ts';
export { OutputFile, STAGE_BYTES } from './output-file.ts';
export { replaceTarget } from './replace-target.ts';
export type { ReplaceTarget } from './replace-target.ts';
export type { OutputFileOptions, OutputMode } from './output-file.ts';
export { PYTHON, withTempDir, runPython, mulberry32 } from './testing.ts';
export { HttpError, startHttpService, send } from './http-server.ts';
export type {
  HttpAccess, HttpMethod, HttpReply, HttpRequestContext, HttpRoute, HttpService, HttpServiceOptions, HttpStats,
} from './http-server.ts';
export { RemoteError, createHttpClient, urlPath } from './http-client.ts';
export type { HttpClient, HttpClientOptions, HttpClientRequest } from './http-client.ts';
export { encodePng, encodeIndexedPng } from './png.ts';
export type { PngOptions, RgbaImage } from './png.ts';
export {
  Canvas, EMPTY_CELL, FONT_CELL, SERIES_COLOURS, binSky, formatTick, niceTicks, plotPng, rampColour, renderDensityMap,
  renderLineChart, textWidth, timeTicks,
} from './plot.ts';
export type { ChartSeries, DensityMapOptions, LineChartOptions, Rgb, SkyGrid, SkyGridSpec, TextOptions } from './plot.ts';
export { checkPng } from './png-check.ts';
export type { CheckedPng } from './png-check.ts';
export { startServerChild } from './child-server.ts';
export type { ServerChild, ServerChildOptions } from './child-server.ts';
