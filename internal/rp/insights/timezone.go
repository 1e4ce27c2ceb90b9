package insights

import (
	"strings"
	"time"
	_ "time/tzdata" // time zones without the host's zoneinfo

	"nimbus/internal/resource"
)

// windowsZones maps the Windows time zone names Azure's autoscale takes
// (the spec's list) to IANA zones. IANA names are accepted too.
var windowsZones = map[string]string{
	"dateline standard time": "Etc/GMT+12", "utc-11": "Etc/GMT+11", "hawaiian standard time": "Pacific/Honolulu",
	"alaskan standard time": "America/Anchorage", "pacific standard time (mexico)": "America/Tijuana",
	"pacific standard time": "America/Los_Angeles", "us mountain standard time": "America/Phoenix",
	"mountain standard time (mexico)": "America/Chihuahua", "mountain standard time": "America/Denver",
	"central america standard time": "America/Guatemala", "central standard time": "America/Chicago",
	"central standard time (mexico)": "America/Mexico_City", "canada central standard time": "America/Regina",
	"sa pacific standard time": "America/Bogota", "eastern standard time": "America/New_York",
	"us eastern standard time": "America/Indiana/Indianapolis", "venezuela standard time": "America/Caracas",
	"paraguay standard time": "America/Asuncion", "atlantic standard time": "America/Halifax",
	"central brazilian standard time": "America/Cuiaba", "sa western standard time": "America/La_Paz",
	"pacific sa standard time": "America/Santiago", "newfoundland standard time": "America/St_Johns",
	"e. south america standard time": "America/Sao_Paulo", "argentina standard time": "America/Buenos_Aires",
	"sa eastern standard time": "America/Cayenne", "greenland standard time": "America/Godthab",
	"montevideo standard time": "America/Montevideo", "bahia standard time": "America/Bahia",
	"utc-02": "Etc/GMT+2", "mid-atlantic standard time": "Etc/GMT+2", "azores standard time": "Atlantic/Azores",
	"cape verde standard time": "Atlantic/Cape_Verde", "morocco standard time": "Africa/Casablanca",
	"utc": "UTC", "gmt standard time": "Europe/London", "greenwich standard time": "Atlantic/Reykjavik",
	"w. europe standard time": "Europe/Berlin", "central europe standard time": "Europe/Budapest",
	"romance standard time": "Europe/Paris", "central european standard time": "Europe/Warsaw",
	"w. central africa standard time": "Africa/Lagos", "namibia standard time": "Africa/Windhoek",
	"jordan standard time": "Asia/Amman", "gtb standard time": "Europe/Bucharest",
	"middle east standard time": "Asia/Beirut", "egypt standard time": "Africa/Cairo",
	"syria standard time": "Asia/Damascus", "e. europe standard time": "Europe/Chisinau",
	"south africa standard time": "Africa/Johannesburg", "fle standard time": "Europe/Kiev",
	"turkey standard time": "Europe/Istanbul", "israel standard time": "Asia/Jerusalem",
	"kaliningrad standard time": "Europe/Kaliningrad", "libya standard time": "Africa/Tripoli",
	"arabic standard time": "Asia/Baghdad", "arab standard time": "Asia/Riyadh",
	"belarus standard time": "Europe/Minsk", "russian standard time": "Europe/Moscow",
	"e. africa standard time": "Africa/Nairobi", "iran standard time": "Asia/Tehran",
	"arabian standard time": "Asia/Dubai", "azerbaijan standard time": "Asia/Baku",
	"russia time zone 3": "Europe/Samara", "mauritius standard time": "Indian/Mauritius",
	"georgian standard time": "Asia/Tbilisi", "caucasus standard time": "Asia/Yerevan",
	"afghanistan standard time": "Asia/Kabul", "west asia standard time": "Asia/Tashkent",
	"ekaterinburg standard time": "Asia/Yekaterinburg", "pakistan standard time": "Asia/Karachi",
	"india standard time": "Asia/Kolkata", "sri lanka standard time": "Asia/Colombo",
	"nepal standard time": "Asia/Kathmandu", "central asia standard time": "Asia/Almaty",
	"bangladesh standard time": "Asia/Dhaka", "n. central asia standard time": "Asia/Novosibirsk",
	"myanmar standard time": "Asia/Rangoon", "se asia standard time": "Asia/Bangkok",
	"north asia standard time": "Asia/Krasnoyarsk", "china standard time": "Asia/Shanghai",
	"north asia east standard time": "Asia/Irkutsk", "singapore standard time": "Asia/Singapore",
	"w. australia standard time": "Australia/Perth", "taipei standard time": "Asia/Taipei",
	"ulaanbaatar standard time": "Asia/Ulaanbaatar", "tokyo standard time": "Asia/Tokyo",
	"korea standard time": "Asia/Seoul", "yakutsk standard time": "Asia/Yakutsk",
	"cen. australia standard time": "Australia/Adelaide", "aus central standard time": "Australia/Darwin",
	"e. australia standard time": "Australia/Brisbane", "aus eastern standard time": "Australia/Sydney",
	"west pacific standard time": "Pacific/Port_Moresby", "tasmania standard time": "Australia/Hobart",
	"magadan standard time": "Asia/Magadan", "vladivostok standard time": "Asia/Vladivostok",
	"russia time zone 10": "Asia/Srednekolymsk", "central pacific standard time": "Pacific/Guadalcanal",
	"russia time zone 11": "Asia/Kamchatka", "new zealand standard time": "Pacific/Auckland",
	"utc+12": "Etc/GMT-12", "fiji standard time": "Pacific/Fiji", "kamchatka standard time": "Asia/Kamchatka",
	"tonga standard time": "Pacific/Tongatapu", "samoa standard time": "Pacific/Apia",
	"line islands standard time": "Pacific/Kiritimati",
}

// LoadTimeZone resolves a Windows time zone name (Azure's) or an IANA name.
func LoadTimeZone(name string) (*time.Location, error) {
	n := strings.TrimSpace(name)
	if iana, ok := windowsZones[strings.ToLower(n)]; ok {
		n = iana
	}
	if n != "" && !strings.HasPrefix(n, "/") && !strings.Contains(n, "..") {
		if loc, err := time.LoadLocation(n); err == nil {
			return loc, nil
		}
	}
	return nil, resource.BadRequest("BadRequest", "The time zone '%s' is not supported: use a Windows time zone name such as 'Pacific Standard Time' or 'UTC'.", name)
}
