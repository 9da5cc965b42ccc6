/* The console's own script (DESIGN.md section 10), served from /ui/static under the
   console's Content-Security-Policy (default-src 'self': no inline script, no eval).

   - Times: every <time datetime="...Z"> the server renders in UTC is shown in the
     viewer's own time zone, the zone named after it and the UTC time in its title.
   - Refresh: a region marked data-refresh="NAME" is fetched again (the same URL, the
     same query) every few seconds and swapped in place, keeping the scroll position;
     not while the tab is hidden, a field in it is being typed in or changed, a <details>
     in it is open or text is selected. A note says when it was last updated and can
     pause it; a sign-in page or an error stops it, and the note says so.
   - Confirmations: a form with data-confirm="QUESTION" asks it before it is sent, and
     sends confirm=yes when the answer is yes (without this script, the server asks on
     a page of its own).

   Without JavaScript every page works as the server renders it. */
(function () {
  "use strict";

  var REFRESH_SECONDS = 10;
  var RECHECK_MS = 1000; // how soon a refresh put off (typing, an open section) is tried again
  var SIGN_IN_PATH = "/ui/login";

  /* Times */

  var formatter = null;

  function zoneFormatter() {
    if (formatter === null) {
      formatter = new Intl.DateTimeFormat(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", second: "2-digit",
        hourCycle: "h23", timeZoneName: "short", numberingSystem: "latn"
      });
    }
    return formatter;
  }

  function localText(date) {
    var parts = {};
    zoneFormatter().formatToParts(date).forEach(function (part) {
      parts[part.type] = part.value;
    });
    var hour = parts.hour === "24" ? "00" : parts.hour;
    return parts.year + "-" + parts.month + "-" + parts.day + " " + hour + ":" +
      parts.minute + ":" + parts.second + " " + parts.timeZoneName;
  }

  function localizeTimes(root) {
    var zone = zoneFormatter().resolvedOptions().timeZone;
    root.querySelectorAll("time[datetime]").forEach(function (element) {
      if (element.hasAttribute("data-local")) return;
      var date = new Date(element.getAttribute("datetime"));
      if (isNaN(date.getTime())) return;
      var utc = element.textContent;
      element.textContent = localText(date);
      element.title = utc + (zone ? " (shown in " + zone + ")" : "");
      element.setAttribute("data-local", "");
    });
  }

  function clockText(date) {
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(date.getHours()) + ":" + two(date.getMinutes()) + ":" + two(date.getSeconds());
  }

  /* Refresh */

  function isField(element) {
    if (!element) return false;
    var tag = element.tagName;
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || element.isContentEditable;
  }

  function changedField(region) {
    var fields = region.querySelectorAll("input, textarea, select");
    for (var i = 0; i < fields.length; i++) {
      var field = fields[i];
      if (field.type === "hidden" || field.type === "submit" || field.type === "button") continue;
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) return true;
      } else if (field.tagName === "SELECT") {
        for (var j = 0; j < field.options.length; j++) {
          if (field.options[j].selected !== field.options[j].defaultSelected) return true;
        }
      } else if (field.value !== field.defaultValue) {
        return true;
      }
    }
    return false;
  }

  function Refresher(regions) {
    this.regions = regions;
    this.paused = false; // by the viewer
    this.stopped = false; // by a sign-in page or an error
    this.busy = false;
    this.timer = null;
    this.updated = new Date();
    this.note = this.buildNote();
    regions[0].parentNode.insertBefore(this.note, regions[0]);
    this.show("");
    this.schedule(REFRESH_SECONDS * 1000);
    var self = this;
    document.addEventListener("visibilitychange", function () {
      if (document.visibilityState === "visible" && self.overdue()) self.schedule(0);
    });
  }

  Refresher.prototype.buildNote = function () {
    var note = document.createElement("p");
    note.className = "refresh-note muted";
    note.setAttribute("data-refresh-note", "");
    this.text = document.createElement("span");
    this.button = document.createElement("button");
    this.button.type = "button";
    this.button.className = "link-button";
    var self = this;
    this.button.addEventListener("click", function () { self.toggle(); });
    note.appendChild(this.text);
    note.appendChild(document.createTextNode(" "));
    note.appendChild(this.button);
    return note;
  };

  Refresher.prototype.show = function (why) {
    var updated = "Updated " + clockText(this.updated);
    if (this.stopped) {
      this.note.className = "refresh-note notice error";
      this.note.setAttribute("role", "alert");
      this.text.textContent = updated + ". Stopped updating: " + this.stopped;
      this.button.hidden = true;
      return;
    }
    if (this.paused) {
      this.text.textContent = updated + " · paused.";
      this.button.textContent = "Resume";
    } else {
      this.text.textContent = updated + " · updates every " + REFRESH_SECONDS + " s" +
        (why ? " (waiting: " + why + ")" : "") + ".";
      this.button.textContent = "Pause";
    }
  };

  Refresher.prototype.toggle = function () {
    this.paused = !this.paused;
    this.show("");
    if (!this.paused) {
      var since = Date.now() - this.updated.getTime();
      this.schedule(Math.max(0, REFRESH_SECONDS * 1000 - since));
    }
  };

  Refresher.prototype.overdue = function () {
    return Date.now() - this.updated.getTime() >= REFRESH_SECONDS * 1000;
  };

  Refresher.prototype.schedule = function (delay) {
    var self = this;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.timer = null; self.tick(); }, delay);
  };

  /* Why a refresh now would get in the viewer's way ("" when it would not). */
  Refresher.prototype.holdUp = function () {
    if (document.visibilityState !== "visible") return "the tab is hidden";
    var active = document.activeElement;
    if (isField(active) && active.type !== "hidden") return "you are typing";
    var selection = window.getSelection && window.getSelection();
    if (selection && !selection.isCollapsed && String(selection).trim()) {
      return "text is selected";
    }
    for (var i = 0; i < this.regions.length; i++) {
      var region = this.regions[i];
      if (region.querySelector("details[open]")) return "a section is open";
      if (changedField(region)) return "a form is changed";
    }
    return "";
  };

  Refresher.prototype.tick = function () {
    if (this.stopped || this.paused || this.busy) return;
    var why = this.holdUp();
    if (why) {
      this.show(why);
      if (document.visibilityState === "visible") this.schedule(RECHECK_MS);
      return; // a hidden tab is refreshed when it shows again (visibilitychange)
    }
    this.fetchPage();
  };

  Refresher.prototype.stop = function (reason) {
    this.stopped = reason;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.show("");
  };

  Refresher.prototype.fetchPage = function () {
    var self = this;
    this.busy = true;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      redirect: "follow",
      headers: { "Accept": "text/html" }
    }).then(function (response) {
      var path = new URL(response.url, window.location.href).pathname;
      if (path === SIGN_IN_PATH) {
        throw new Error("you are signed out; reload the page to sign in again.");
      }
      if (!response.ok) {
        throw new Error("the router answered " + response.status +
          "; reload the page to try again.");
      }
      return response.text();
    }, function () {
      throw new Error("the router did not answer; reload the page to try again.");
    }).then(function (html) {
      self.busy = false;
      var fresh = new DOMParser().parseFromString(html, "text/html");
      var why = self.holdUp();
      if (why) { // the viewer started something while the page came: try again soon
        self.show(why);
        self.schedule(RECHECK_MS);
        return;
      }
      if (!self.swap(fresh)) {
        self.stop("the page came back without its list; reload the page.");
        return;
      }
      self.updated = new Date();
      self.show("");
      self.schedule(REFRESH_SECONDS * 1000);
    }).catch(function (error) {
      self.busy = false;
      self.stop(error && error.message ? error.message : "the refresh failed.");
    });
  };

  /* Put each region of the fetched page in place of ours; false if one is missing. */
  Refresher.prototype.swap = function (fresh) {
    var replacements = [];
    for (var i = 0; i < this.regions.length; i++) {
      var name = this.regions[i].getAttribute("data-refresh");
      var found = null;
      fresh.querySelectorAll("[data-refresh]").forEach(function (candidate) {
        if (found === null && candidate.getAttribute("data-refresh") === name) found = candidate;
      });
      if (found === null) return false;
      replacements.push(found);
    }
    var x = window.scrollX, y = window.scrollY;
    for (var k = 0; k < this.regions.length; k++) {
      var old = this.regions[k];
      var incoming = document.adoptNode(replacements[k]);
      var sideways = Array.prototype.map.call(
        old.querySelectorAll(".scroll"), function (box) { return box.scrollLeft; });
      old.replaceWith(incoming);
      incoming.querySelectorAll(".scroll").forEach(function (box, index) {
        if (index < sideways.length) box.scrollLeft = sideways[index];
      });
      localizeTimes(incoming);
      this.regions[k] = incoming;
    }
    window.scrollTo(x, y);
    return true;
  };

  /* Confirmations */

  function askFirst(event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    var question = form.getAttribute("data-confirm");
    if (!question) return;
    if (!window.confirm(question)) {
      event.preventDefault();
      return;
    }
    var field = form.querySelector("input[name=confirm]");
    if (field === null) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "confirm";
      form.appendChild(field);
    }
    field.value = "yes";
  }

  function start() {
    localizeTimes(document);
    document.addEventListener("submit", askFirst);
    var regions = Array.prototype.slice.call(document.querySelectorAll("[data-refresh]"));
    if (regions.length && window.fetch && window.DOMParser) {
      new Refresher(regions); // it keeps itself going from its timer
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
