/**
 * Aeron transport for Roundhouse workers: embedded media driver, variable-size all-to-all, ring
 * all-reduce, broadcast/gather/barrier and the coordinator control channel.
 *
 * <p>Not built yet: this module is the placeholder the build needs for issue #3. Nothing in the
 * product calls it; a multi-worker run is refused by the trainer with a message saying so.
 */
package io.roundhouse.comms;
