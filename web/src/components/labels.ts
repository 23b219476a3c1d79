// Display names of the API's enum values (protojson sends their names).
const paymentStatus: Record<string, string> = {
  PAYMENT_STATUS_PENDING: 'Pending',
  PAYMENT_STATUS_SUCCEEDED: 'Paid',
  PAYMENT_STATUS_FAILED: 'Failed',
  PAYMENT_STATUS_EXPIRED: 'Expired',
  PAYMENT_STATUS_REFUNDED: 'Refunded',
  PAYMENT_STATUS_DISPUTED: 'Disputed',
};
const refundStatus: Record<string, string> = {
  REFUND_STATUS_PENDING: 'Pending',
  REFUND_STATUS_SUCCEEDED: 'Refunded',
  REFUND_STATUS_FAILED: 'Failed',
};
const txKind: Record<string, string> = {
  TRANSACTION_KIND_CREDIT: 'Credit',
  TRANSACTION_KIND_DEBIT: 'Debit',
  TRANSACTION_KIND_ADJUSTMENT: 'Adjustment',
  TRANSACTION_KIND_EXPIRY: 'Expiry',
  TRANSACTION_KIND_CAPTURE: 'Capture',
};
const rentalState: Record<string, string> = {
  RENTAL_STATE_RUNNING: 'Running',
  RENTAL_STATE_SUSPENDED_INSUFFICIENT_CREDITS: 'Suspended',
  RENTAL_STATE_STOPPED: 'Stopped',
};
const emailKind: Record<string, string> = {
  EMAIL_KIND_LOW_CREDIT: 'Low Credit Alert',
  EMAIL_KIND_CREDITS_EXPIRING: 'Credits expiring',
  EMAIL_KIND_CREDITS_EXPIRED: 'Credits expired',
  EMAIL_KIND_PAYMENT_SUCCEEDED: 'Payment received',
  EMAIL_KIND_RENTAL_SUSPENDED: 'Instance suspended',
};
const deliveryStatus: Record<string, string> = {
  DELIVERY_STATUS_PENDING: 'Pending',
  DELIVERY_STATUS_SENT: 'Sent',
  DELIVERY_STATUS_FAILED: 'Failed',
};
const modality: Record<string, string> = {
  MODALITY_LLM: 'LLM',
  MODALITY_SPEECH_TO_TEXT: 'Speech to text',
  MODALITY_TEXT_TO_SPEECH: 'Text to speech',
  MODALITY_IMAGE: 'Image',
  MODALITY_EMBEDDING: 'Embedding',
  MODALITY_VIDEO: 'Video',
  MODALITY_RERANK: 'Rerank',
};

function label(table: Record<string, string>, value: string | undefined): string {
  if (!value) return '—';
  return table[value] ?? value;
}

export const labels = {
  paymentStatus: (v?: string) => label(paymentStatus, v),
  refundStatus: (v?: string) => label(refundStatus, v),
  txKind: (v?: string) => label(txKind, v),
  rentalState: (v?: string) => label(rentalState, v),
  emailKind: (v?: string) => label(emailKind, v),
  deliveryStatus: (v?: string) => label(deliveryStatus, v),
  modality: (v?: string) => label(modality, v),
  deliveryStatuses: Object.keys(deliveryStatus),
};

/** "input_tokens" → "input tokens". */
export function unitLabel(unit: string | undefined): string {
  return (unit ?? '').replace(/_/g, ' ');
}
