/**
 * The health event: something about the sensor itself an operator must know (a full disk, a
 * mirror port that went silent, home unreachable), written to the EVE file, sent with the next
 * heartbeat and kept in status. `state` says whether the condition began or ended.
 */

export type HealthSeverity = 'info' | 'warning' | 'critical';

export interface HealthEvent {
  event_type: 'health';
  timestamp: string;
  /** Dotted, stable: `store.full`, `capture.no_packets`, `home.unreachable`, `config.last_known_good`. */
  name: string;
  severity: HealthSeverity;
  state: 'raised' | 'cleared';
  message: string;
  detail?: Record<string, string | number | boolean>;
}

export type HealthSink = (event: HealthEvent) => void;

export function healthEvent(
  name: string, severity: HealthSeverity, message: string, detail?: Record<string, string | number | boolean>, state: 'raised' | 'cleared' = 'raised', nowMs = Date.now(),
): HealthEvent {
  return { event_type: 'health', timestamp: new Date(nowMs).toISOString(), name, severity, state, message, ...(detail !== undefined ? { detail } : {}) };
}
