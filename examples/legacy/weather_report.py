"""Daily weather report.

Fetches today's weather for a list of cities from the weather service, saves
each city's reading as JSON, writes a Markdown report and publishes it.

    WEATHER_URL=http://127.0.0.1:8000 python weather_report.py [CITY ...]

Settings (environment):
    WEATHER_URL     the weather service (default http://127.0.0.1:8000)
    WEATHER_OUTPUT  output folder (default ./weather)
    WEATHER_PAUSE   seconds to wait between cities, to be nice to the service (default 0)
"""

import json
import os
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime

DEFAULT_CITIES = ["Amsterdam", "Berlin", "Lisbon", "Oslo", "Rome", "Vienna"]

SERVICE_URL = os.environ.get("WEATHER_URL", "http://127.0.0.1:8000").rstrip("/")
OUTPUT_DIR = os.environ.get("WEATHER_OUTPUT", "weather")
PAUSE = float(os.environ.get("WEATHER_PAUSE", "0"))


def fetch_city(city):
    url = SERVICE_URL + "/weather/" + urllib.parse.quote(city)
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


def save_city(city, data):
    path = os.path.join(OUTPUT_DIR, city.lower().replace(" ", "_") + ".json")
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
    return path


def build_report(readings):
    lines = ["# Weather report", ""]
    lines.append("Generated " + datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
    lines.append("")
    lines.append("| City | Temperature | Humidity | Wind | Conditions |")
    lines.append("| --- | ---: | ---: | ---: | --- |")
    for r in readings:
        lines.append(
            f"| {r['city']} | {r['temperature_c']:.1f} °C | {r['humidity_pct']} % "
            f"| {r['wind_kmh']} km/h | {r['conditions']} |"
        )
    warmest = max(readings, key=lambda r: r["temperature_c"])
    coldest = min(readings, key=lambda r: r["temperature_c"])
    lines.append("")
    lines.append(f"Warmest: {warmest['city']} ({warmest['temperature_c']:.1f} °C)")
    lines.append(f"Coldest: {coldest['city']} ({coldest['temperature_c']:.1f} °C)")
    return "\n".join(lines) + "\n"


def publish(title, report):
    body = json.dumps({"title": title, "markdown": report}).encode("utf-8")
    request = urllib.request.Request(
        SERVICE_URL + "/reports",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.load(response)


def main():
    cities = sys.argv[1:] or DEFAULT_CITIES
    os.makedirs(OUTPUT_DIR, exist_ok=True)

    readings = []
    for i, city in enumerate(cities, start=1):
        print(f"[{i}/{len(cities)}] {city}: fetching", flush=True)
        data = fetch_city(city)
        path = save_city(city, data)
        print(f"[{i}/{len(cities)}] {city}: {data['temperature_c']} °C, saved {path}", flush=True)
        readings.append(data)
        if i < len(cities):
            time.sleep(PAUSE)

    report = build_report(readings)
    report_path = os.path.join(OUTPUT_DIR, "report.md")
    with open(report_path, "w") as f:
        f.write(report)
    print(f"wrote {report_path}", flush=True)

    receipt = publish(f"Weather in {len(cities)} cities", report)
    print(f"published report #{receipt['report_id']}", flush=True)


if __name__ == "__main__":
    main()
