"""Azure Functions (Python v2 programming model): a timer that triggers Nightshift every minute.

App settings (Configuration of the Function App):
  NIGHTSHIFT_URL            https://nightshift.example.com  (where `nightshift serve` answers)
  NIGHTSHIFT_TRIGGER_TOKEN  @Microsoft.KeyVault(SecretUri=https://<vault>.vault.azure.net/secrets/nightshift-trigger-token/)
  NIGHTSHIFT_KINDS          optional, default "drift-scan compliance-scan cost-analysis"
"""

from __future__ import annotations

import json
import logging

import azure.functions as func
from nightshift_trigger import trigger_all

app = func.FunctionApp()


# NCRONTAB with seconds: second 0 of every minute, like pg_cron's enqueue job. use_monitor keeps one
# run per slot across restarts and scale-out.
@app.timer_trigger(schedule="0 * * * * *", arg_name="timer", run_on_startup=False, use_monitor=True)
def nightshift_enqueue_due(timer: func.TimerRequest) -> None:
    if timer.past_due:
        logging.info("nightshift trigger is past due; enqueue_due() catches up on its own")
    for answer in trigger_all():
        logging.info("nightshift %s", json.dumps(answer))
