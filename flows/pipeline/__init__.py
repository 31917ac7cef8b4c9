"""What moves a flow along: intake, processing (``process``), batches, validation outside the pipeline,
dispatch through the outbox and its channels, status changes and status return flows."""
