"""The synthetic tools: 15 domains, 2-3 functions each, with several query phrasings per function.

Descriptions are short on purpose: a task shows 1-4 of these tools to a 135M model whose whole
prompt should stay within a few hundred tokens. Every value a query states comes from the pools
below; city names accept the "City, Country" form as well (a sensible answer BFCL also accepts).
"""

from __future__ import annotations

from megatron_toolrl.data.synth_spec import (
    Function,
    boolean,
    choice,
    code,
    enum_param,
    flag,
    integer,
    number,
    obj_param,
    opt,
    req,
    sample_list,
)

CITIES = [
    ("Paris", ["Paris, France"]),
    ("Tokyo", ["Tokyo, Japan"]),
    ("Berlin", ["Berlin, Germany"]),
    ("Madrid", ["Madrid, Spain"]),
    ("Toronto", ["Toronto, Canada"]),
    ("Sydney", ["Sydney, Australia"]),
    ("Cairo", ["Cairo, Egypt"]),
    ("Lima", ["Lima, Peru"]),
    ("Oslo", ["Oslo, Norway"]),
    ("Seoul", ["Seoul, South Korea"]),
    ("Chicago", ["Chicago, IL"]),
    ("Boston", ["Boston, MA"]),
    ("Denver", ["Denver, CO"]),
    ("Austin", ["Austin, TX"]),
    ("Lisbon", ["Lisbon, Portugal"]),
    ("Vienna", ["Vienna, Austria"]),
    ("Nairobi", ["Nairobi, Kenya"]),
    ("Mumbai", ["Mumbai, India"]),
    ("Dublin", ["Dublin, Ireland"]),
    ("Prague", ["Prague, Czech Republic"]),
    ("Rome", ["Rome, Italy"]),
    ("Athens", ["Athens, Greece"]),
    ("Bangkok", ["Bangkok, Thailand"]),
    ("Helsinki", ["Helsinki, Finland"]),
]
COUNTRIES = [
    "France",
    "Japan",
    "Brazil",
    "Canada",
    "India",
    "Kenya",
    "Germany",
    "Mexico",
    "Australia",
    "Egypt",
    "Norway",
    "Chile",
]
DATES = [f"2025-{m:02d}-{d:02d}" for m in (1, 3, 4, 6, 7, 9, 10, 12) for d in (2, 9, 14, 18, 23, 27)]
TIMES = [f"{h:02d}:{m:02d}" for h in (7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19) for m in (0, 15, 30, 45)]
TICKERS = ["AAPL", "MSFT", "GOOG", "AMZN", "NVDA", "TSLA", "META", "IBM", "INTC", "ORCL", "NFLX", "ADBE"]
CURRENCIES = ["USD", "EUR", "GBP", "JPY", "CAD", "CHF", "AUD", "INR"]
PEOPLE_EMAILS = [
    "ana@example.com",
    "li.wei@example.org",
    "sam.ortiz@example.net",
    "priya@example.com",
    "tom.berg@example.org",
    "kofi@example.com",
    "mia.k@example.net",
    "noah@example.org",
]
SONGS = [
    "Blue Horizon",
    "Midnight Train",
    "Paper Lanterns",
    "Golden Hour",
    "River Song",
    "Neon Lights",
    "Silent Harbor",
    "Northern Sky",
    "Dancing Alone",
    "Summer Rain",
    "City of Glass",
    "Wildflowers",
]
ARTISTS = [
    "Nora Vale",
    "The Lanterns",
    "Miles Carter",
    "Aurora Sky",
    "Jonas Reed",
    "The Night Owls",
    "Lena Park",
    "Echo Valley",
]
TEAMS = ["Lakers", "Celtics", "Arsenal", "Barcelona", "Juventus", "Yankees", "Packers", "Bulls", "Chelsea", "Ajax"]
PLAYERS = ["Maya Torres", "Jamal Brooks", "Lukas Meyer", "Sofia Rossi", "Kenji Sato", "Amara Diallo", "Ethan Cole"]
MOVIES = [
    "The Silent Coast",
    "Iron Meadow",
    "Starfall",
    "The Last Orchard",
    "Glass Kingdom",
    "Red Canyon",
    "Echoes of Mars",
]
FOODS = ["banana", "brown rice", "chicken breast", "almonds", "broccoli", "salmon", "oatmeal", "avocado", "lentils"]
INGREDIENTS = ["tomato", "spinach", "chickpeas", "mushrooms", "tofu", "garlic", "basil", "potato", "onion", "zucchini"]
PLACES = [
    "Central Station",
    "City Hall",
    "the airport",
    "Riverside Park",
    "the Science Museum",
    "Main Street Library",
    "Harbor Pier",
    "Union Square",
    "the Old Town Gate",
    "Greenwood Mall",
]
STREETS = ["12 Oak Street", "48 Maple Avenue", "7 Harbor Road", "221 Pine Lane", "90 Elm Court", "5 Cedar Way"]
WORDS = ["serendipity", "ephemeral", "ubiquitous", "resilient", "meticulous", "eloquent", "candid", "benevolent"]
PHRASES = [
    "Good morning, how are you?",
    "Where is the train station?",
    "Thank you for your help.",
    "The meeting starts at noon.",
    "I would like a cup of coffee.",
    "See you tomorrow.",
]
EVENT_TITLES = [
    "Team standup",
    "Budget review",
    "Dentist appointment",
    "Project kickoff",
    "Lunch with Sara",
    "Quarterly planning",
    "Yoga class",
    "Parent-teacher meeting",
]
REMINDERS = [
    "call the bank",
    "water the plants",
    "take my medicine",
    "submit the report",
    "pick up groceries",
    "pay rent",
]
MESSAGES = [
    "I am running ten minutes late",
    "The package has arrived",
    "Dinner is at seven tonight",
    "Please review the draft",
    "Happy birthday",
    "The meeting moved to Friday",
]
SUBJECTS = ["Weekly update", "Invoice 2291", "Trip itinerary", "Meeting notes", "Contract draft", "Welcome aboard"]
CHANNELS = ["#general", "#engineering", "#marketing", "#random", "#support", "#design"]
PHONES = ["+1-555-0134", "+1-555-0199", "+44-20-7946-0018", "+1-555-0172", "+61-2-9876-5432"]
PRODUCTS = [
    "wireless headphones",
    "running shoes",
    "coffee grinders",
    "yoga mats",
    "desk lamps",
    "backpacks",
    "water bottles",
]
ROOMS = ["living room", "bedroom", "kitchen", "office", "bathroom", "garage"]

CATALOG: tuple[Function, ...] = (
    # ---- weather ----
    Function(
        "get_current_weather",
        "weather",
        "Get the current weather in a city.",
        (
            req("city", "string", "City name.", choice(CITIES)),
            enum_param(
                "unit",
                "Temperature unit.",
                ["celsius", "fahrenheit"],
                optional=True,
                default="celsius",
                clauses=["Give the temperature in {v}.", "Use {v}."],
            ),
        ),
        (
            "What's the weather like in {city} right now?",
            "Tell me the current weather in {city}.",
            "How warm is it in {city} at the moment?",
        ),
    ),
    Function(
        "get_forecast",
        "weather",
        "Get a daily weather forecast for a city.",
        (
            req("city", "string", "City name.", choice(CITIES)),
            req("days", "integer", "Number of days to forecast (1-14).", integer(2, 14)),
            flag(
                "include_hourly",
                "Add hourly detail.",
                False,
                ["No hourly details needed."],
                ["Include hourly details."],
            ),
        ),
        (
            "Give me the {days}-day forecast for {city}.",
            "What will the weather be in {city} over the next {days} days?",
            "Forecast {city} for {days} days, please.",
        ),
    ),
    Function(
        "get_air_quality",
        "weather",
        "Get pollutant levels for a city.",
        (
            req("city", "string", "City name.", choice(CITIES)),
            req(
                "pollutants",
                "array",
                "Pollutants to report.",
                sample_list(["pm25", "pm10", "ozone", "no2", "co"], 1, 3, ordered=False),
                items={"type": "string"},
            ),
        ),
        (
            "Check the {pollutants} levels in {city}.",
            "How bad are {pollutants} in {city} today?",
            "I want the air quality in {city}, specifically {pollutants}.",
        ),
    ),
    # ---- finance ----
    Function(
        "get_stock_price",
        "finance",
        "Get the latest price of a stock.",
        (
            req("symbol", "string", "Ticker symbol.", choice(TICKERS)),
            enum_param(
                "exchange",
                "Stock exchange.",
                ["NASDAQ", "NYSE", "LSE"],
                optional=True,
                default="NASDAQ",
                clauses=["It is listed on {v}.", "Use the {v} quote."],
            ),
        ),
        (
            "What's the latest price of {symbol}?",
            "Look up the stock price for ticker {symbol}.",
            "How much is {symbol} trading at?",
        ),
    ),
    Function(
        "convert_currency",
        "finance",
        "Convert an amount between currencies.",
        (
            req("amount", "float", "Amount to convert.", number(5, 5000, 2)),
            req("from_currency", "string", "Currency code to convert from.", choice(CURRENCIES)),
            req("to_currency", "string", "Currency code to convert to.", choice(CURRENCIES)),
        ),
        (
            "Convert {amount} {from_currency} to {to_currency}.",
            "How much is {amount} {from_currency} in {to_currency}?",
            "I have {amount} {from_currency}; what is that in {to_currency}?",
        ),
    ),
    Function(
        "calculate_loan_payment",
        "finance",
        "Monthly payment of a fixed-rate loan.",
        (
            req("principal", "float", "Loan amount.", number(1000, 500000, 0)),
            req("annual_rate", "float", "Yearly interest rate in percent.", number(1, 12, 2)),
            req("years", "integer", "Loan term in years.", integer(1, 30)),
        ),
        (
            "What's the monthly payment on a {principal} loan at {annual_rate}% for {years} years?",
            "Calculate my monthly payment: I'm borrowing {principal} over {years} years at {annual_rate}% a year.",
            "If I borrow {principal} at an annual rate of {annual_rate}% for {years} years, what do I pay each month?",
        ),
    ),
    # ---- travel ----
    Function(
        "search_flights",
        "travel",
        "Search flights between two cities on a date.",
        (
            req("origin", "string", "Departure city.", choice(CITIES)),
            req("destination", "string", "Arrival city.", choice(CITIES)),
            req("date", "string", "Departure date, YYYY-MM-DD.", choice(DATES)),
            opt(
                "passengers",
                "integer",
                "Number of passengers.",
                integer(2, 6),
                default=1,
                clauses=["There will be {v} of us.", "Book for {v} passengers."],
            ),
            enum_param(
                "cabin",
                "Cabin class.",
                ["economy", "premium", "business", "first"],
                optional=True,
                default="economy",
                clauses=["We want {v} class.", "Only {v} seats, please."],
            ),
        ),
        (
            "Find flights from {origin} to {destination} on {date}.",
            "I need to fly from {origin} to {destination} on {date}.",
            "Search for a flight leaving {origin} for {destination} on {date}.",
        ),
    ),
    Function(
        "book_hotel",
        "travel",
        "Book a hotel room in a city.",
        (
            req("city", "string", "City of the hotel.", choice(CITIES)),
            req("check_in", "string", "Check-in date, YYYY-MM-DD.", choice(DATES)),
            req("nights", "integer", "Number of nights.", integer(1, 14)),
            opt("guests", "integer", "Number of guests.", integer(2, 5), default=1, clauses=["It's for {v} guests."]),
            flag("breakfast", "Include breakfast.", False, ["No breakfast needed."], ["Add breakfast, please."]),
        ),
        (
            "Book a hotel in {city} from {check_in} for {nights} nights.",
            "I need a room in {city}, checking in on {check_in}, staying {nights} nights.",
            "Reserve {nights} nights at a hotel in {city} starting {check_in}.",
        ),
    ),
    Function(
        "get_visa_requirements",
        "travel",
        "Visa rules for a citizen visiting a country.",
        (
            req("citizenship", "string", "Traveller's country of citizenship.", choice(COUNTRIES)),
            req("destination_country", "string", "Country to visit.", choice(COUNTRIES)),
        ),
        (
            "Do citizens of {citizenship} need a visa for {destination_country}?",
            "What are the visa requirements for a citizen of {citizenship} going to {destination_country}?",
            "I'm from {citizenship} and want to visit {destination_country}. What visa do I need?",
        ),
    ),
    # ---- calendar ----
    Function(
        "create_event",
        "calendar",
        "Add an event to the calendar.",
        (
            req("title", "string", "Event title.", choice(EVENT_TITLES)),
            req("date", "string", "Date, YYYY-MM-DD.", choice(DATES)),
            req("start_time", "string", "Start time, HH:MM (24h).", choice(TIMES)),
            opt(
                "duration_minutes",
                "integer",
                "Length in minutes.",
                integer(15, 180),
                default=60,
                clauses=["It lasts {v} minutes."],
            ),
            opt(
                "attendees",
                "array",
                "Emails of invitees.",
                sample_list(PEOPLE_EMAILS, 1, 2, ordered=False),
                items={"type": "string"},
                clauses=["Invite {v}."],
            ),
        ),
        (
            "Schedule '{title}' on {date} at {start_time}.",
            "Put '{title}' in my calendar for {date}, starting {start_time}.",
            "Create an event called '{title}' at {start_time} on {date}.",
        ),
    ),
    Function(
        "list_events",
        "calendar",
        "List calendar events on a date.",
        (
            req("date", "string", "Date, YYYY-MM-DD.", choice(DATES)),
            enum_param(
                "calendar",
                "Which calendar.",
                ["work", "personal", "family"],
                optional=True,
                default="work",
                clauses=["Look in my {v} calendar.", "Only the {v} calendar."],
            ),
        ),
        ("What's on my calendar for {date}?", "List my events on {date}.", "Do I have anything scheduled on {date}?"),
    ),
    Function(
        "set_reminder",
        "calendar",
        "Set a reminder at a time today.",
        (
            req("message", "string", "What to be reminded of.", choice(REMINDERS)),
            req("time", "string", "Time, HH:MM (24h).", choice(TIMES)),
            enum_param(
                "repeat",
                "Repeat rule.",
                ["none", "daily", "weekly"],
                optional=True,
                default="none",
                clauses=["Repeat it {v}.", "Make it {v}."],
            ),
        ),
        (
            "Remind me to {message} at {time}.",
            "Set a reminder at {time} to {message}.",
            "At {time}, remind me to {message}.",
        ),
    ),
    # ---- e-commerce ----
    Function(
        "search_products",
        "ecommerce",
        "Search the store's products.",
        (
            req("query", "string", "Search words.", choice(PRODUCTS)),
            opt(
                "max_price",
                "float",
                "Highest price in dollars.",
                number(10, 400, 0, fmt="${}"),
                clauses=["Keep it under {v}."],
            ),
            enum_param(
                "sort_by",
                "Sort order.",
                ["relevance", "price_low", "price_high", "rating"],
                optional=True,
                default="relevance",
                clauses=["Sort by {v}."],
            ),
            flag(
                "in_stock_only",
                "Only items in stock.",
                False,
                ["Out-of-stock items are fine."],
                ["Only show items in stock."],
            ),
        ),
        (
            "Search the store for {query}.",
            "Show me {query} you have for sale.",
            "I'm shopping for {query}; what do you have?",
        ),
    ),
    Function(
        "track_order",
        "ecommerce",
        "Get the shipping status of an order.",
        (req("order_id", "string", "Order number.", code("ORD-{}", 10000, 99999)),),
        ("Where is my order {order_id}?", "Track order {order_id} for me.", "What's the status of order {order_id}?"),
    ),
    Function(
        "place_order",
        "ecommerce",
        "Order a product for delivery.",
        (
            req("product_id", "string", "Product SKU.", code("SKU-{}", 1000, 9999)),
            req("quantity", "integer", "How many to order.", integer(1, 9)),
            obj_param(
                "shipping_address",
                "Delivery address.",
                (
                    req("street", "string", "Street and number.", choice(STREETS)),
                    req("city", "string", "City.", choice([c for c, _ in CITIES])),
                    req("postal_code", "string", "Postal code.", code("{}", 10000, 99999)),
                ),
                "{street}, {city} {postal_code}",
            ),
        ),
        (
            "Order {quantity} of {product_id} and ship to {shipping_address}.",
            "Please buy {quantity} units of product {product_id}, delivered to {shipping_address}.",
            "Send {quantity} x {product_id} to {shipping_address}.",
        ),
    ),
    # ---- math ----
    Function(
        "solve_quadratic",
        "math",
        "Roots of a*x^2 + b*x + c = 0.",
        (
            req("a", "integer", "Coefficient of x^2.", integer(1, 9)),
            req("b", "integer", "Coefficient of x.", integer(-20, 20)),
            req("c", "integer", "Constant term.", integer(-30, 30)),
        ),
        (
            "Find the roots of a quadratic with a = {a}, b = {b} and c = {c}.",
            "Solve the quadratic equation where a is {a}, b is {b} and c is {c}.",
            "What are the solutions of the quadratic with coefficients a={a}, b={b}, c={c}?",
        ),
    ),
    Function(
        "compute_statistic",
        "math",
        "A summary statistic of a list of numbers.",
        (
            req(
                "numbers",
                "array",
                "The numbers, in order.",
                sample_list([2, 3, 5, 7, 8, 11, 12, 15, 19, 23, 31, 42], 3, 5, ordered=True),
                items={"type": "integer"},
            ),
            enum_param("measure", "Which statistic.", ["mean", "median", "std"]),
        ),
        (
            "What is the {measure} of {numbers}?",
            "Compute the {measure} of these numbers: {numbers}.",
            "Give me the {measure} for the list {numbers}.",
        ),
    ),
    Function(
        "greatest_common_divisor",
        "math",
        "Greatest common divisor of two integers.",
        (
            req("a", "integer", "First integer.", integer(12, 600)),
            req("b", "integer", "Second integer.", integer(12, 600)),
        ),
        (
            "What is the GCD of {a} and {b}?",
            "Find the greatest common divisor of {a} and {b}.",
            "Compute gcd({a}, {b}) for me.",
        ),
    ),
    # ---- unit conversion ----
    Function(
        "convert_length",
        "units",
        "Convert a length between units.",
        (
            req("value", "float", "Length to convert.", number(0.5, 900, 1)),
            enum_param("from_unit", "Unit to convert from.", ["m", "km", "mi", "ft", "cm", "in"]),
            enum_param("to_unit", "Unit to convert to.", ["m", "km", "mi", "ft", "cm", "in"]),
        ),
        (
            "Convert {value} {from_unit} to {to_unit}.",
            "How many {to_unit} is {value} {from_unit}?",
            "I need {value} {from_unit} expressed in {to_unit}.",
        ),
    ),
    Function(
        "convert_temperature",
        "units",
        "Convert a temperature between scales.",
        (
            req("value", "float", "Temperature to convert.", number(-40, 250, 1)),
            enum_param("from_scale", "Scale to convert from.", ["celsius", "fahrenheit", "kelvin"]),
            enum_param("to_scale", "Scale to convert to.", ["celsius", "fahrenheit", "kelvin"]),
        ),
        (
            "Convert {value} degrees {from_scale} to {to_scale}.",
            "What is {value} {from_scale} in {to_scale}?",
            "Express {value} degrees {from_scale} in {to_scale}.",
        ),
    ),
    Function(
        "convert_weight",
        "units",
        "Convert a weight between units.",
        (
            req("value", "float", "Weight to convert.", number(0.1, 500, 1)),
            enum_param("from_unit", "Unit to convert from.", ["kg", "lb", "g", "oz"]),
            enum_param("to_unit", "Unit to convert to.", ["kg", "lb", "g", "oz"]),
        ),
        (
            "Convert {value} {from_unit} to {to_unit}.",
            "How much is {value} {from_unit} in {to_unit}?",
            "Please turn {value} {from_unit} into {to_unit}.",
        ),
    ),
    # ---- music ----
    Function(
        "play_song",
        "music",
        "Play a song.",
        (
            req("title", "string", "Song title.", choice(SONGS)),
            opt("artist", "string", "Performing artist.", choice(ARTISTS), clauses=["The one by {v}.", "It's by {v}."]),
            flag("shuffle", "Shuffle after this song.", False, ["Don't shuffle afterwards."], ["Shuffle afterwards."]),
        ),
        ("Play '{title}'.", "Put on the song '{title}'.", "I want to hear '{title}' now."),
    ),
    Function(
        "create_playlist",
        "music",
        "Create a playlist from songs.",
        (
            req(
                "name",
                "string",
                "Playlist name.",
                choice(["Road Trip", "Focus", "Morning Run", "Chill Evening", "Party Mix", "Study"]),
            ),
            req(
                "songs",
                "array",
                "Song titles in play order.",
                sample_list(SONGS, 2, 3, ordered=True),
                items={"type": "string"},
            ),
            flag("public", "Share publicly.", False, ["Keep it private."], ["Make it public."]),
        ),
        (
            "Make a playlist called '{name}' with {songs}.",
            "Create the playlist '{name}' containing {songs}, in that order.",
            "New playlist '{name}': {songs}.",
        ),
    ),
    Function(
        "get_artist_top_tracks",
        "music",
        "Most played tracks of an artist.",
        (
            req("artist", "string", "Artist name.", choice(ARTISTS)),
            opt(
                "limit",
                "integer",
                "How many tracks.",
                integer(3, 20),
                default=10,
                clauses=["Just the top {v}.", "List {v} of them."],
            ),
        ),
        (
            "What are the top tracks by {artist}?",
            "Show me the most popular songs of {artist}.",
            "Which songs of {artist} are played most?",
        ),
    ),
    # ---- sports ----
    Function(
        "get_match_score",
        "sports",
        "Score of a team's match on a date.",
        (
            req("team", "string", "Team name.", choice(TEAMS)),
            req("date", "string", "Match date, YYYY-MM-DD.", choice(DATES)),
        ),
        (
            "What was the score of the {team} game on {date}?",
            "How did the {team} do on {date}?",
            "Give me the final score for {team} on {date}.",
        ),
    ),
    Function(
        "get_league_standings",
        "sports",
        "League table for a season.",
        (
            enum_param("league", "League name.", ["Premier League", "La Liga", "Serie A", "NBA", "NFL"]),
            req("season", "integer", "Season start year.", integer(2015, 2024)),
        ),
        (
            "Show the {league} standings for the {season} season.",
            "Who was top of the {league} in {season}?",
            "Get me the {league} table for {season}.",
        ),
    ),
    Function(
        "get_player_stats",
        "sports",
        "Season statistics of a player.",
        (
            req("player_name", "string", "Player's full name.", choice(PLAYERS)),
            req("season", "integer", "Season start year.", integer(2015, 2024)),
            enum_param(
                "stat",
                "Statistic.",
                ["goals", "assists", "points", "rebounds"],
                optional=True,
                default="points",
                clauses=["I care about {v}.", "Focus on {v}."],
            ),
        ),
        (
            "How did {player_name} perform in {season}?",
            "Get {player_name}'s stats for the {season} season.",
            "Show me the {season} numbers for {player_name}.",
        ),
    ),
    # ---- health ----
    Function(
        "calculate_bmi",
        "health",
        "Body mass index from weight and height.",
        (
            req("weight_kg", "float", "Weight in kilograms.", number(40, 140, 1)),
            req("height_m", "float", "Height in metres.", number(1.45, 2.05, 2)),
        ),
        (
            "What's the BMI of someone who weighs {weight_kg} kg and is {height_m} m tall?",
            "Calculate my BMI: I'm {height_m} m and {weight_kg} kg.",
            "I weigh {weight_kg} kg at a height of {height_m} m. What is my BMI?",
        ),
    ),
    Function(
        "log_workout",
        "health",
        "Record a workout.",
        (
            enum_param("activity", "Kind of exercise.", ["running", "cycling", "swimming", "yoga", "walking"]),
            req("duration_minutes", "integer", "Length in minutes.", integer(10, 120)),
            opt(
                "calories",
                "integer",
                "Calories burned.",
                integer(50, 900),
                clauses=["I burned {v} calories.", "It burned {v} calories."],
            ),
        ),
        (
            "Log {duration_minutes} minutes of {activity}.",
            "I just did {activity} for {duration_minutes} minutes; record it.",
            "Add a {activity} workout of {duration_minutes} minutes to my log.",
        ),
    ),
    Function(
        "find_doctor",
        "health",
        "Find doctors of a specialty in a city.",
        (
            enum_param("specialty", "Medical specialty.", ["cardiology", "dermatology", "pediatrics", "neurology"]),
            req("city", "string", "City.", choice(CITIES)),
            flag(
                "accepts_new_patients",
                "Only doctors taking new patients.",
                False,
                ["Any doctor is fine."],
                ["They must be taking new patients."],
            ),
        ),
        (
            "Find a {specialty} doctor in {city}.",
            "I need a doctor for {specialty} in {city}.",
            "Who practises {specialty} in {city}?",
        ),
    ),
    # ---- messaging ----
    Function(
        "send_email",
        "messaging",
        "Send an email.",
        (
            req("to", "string", "Recipient email.", choice(PEOPLE_EMAILS)),
            req("subject", "string", "Subject line.", choice(SUBJECTS)),
            req("body", "string", "Message text.", choice(MESSAGES)),
        ),
        (
            "Email {to} with the subject '{subject}' saying '{body}'.",
            "Send an email to {to}: subject '{subject}', body '{body}'.",
            "Write to {to} about '{subject}' and tell them '{body}'.",
        ),
    ),
    Function(
        "send_sms",
        "messaging",
        "Send a text message to a phone number.",
        (
            req("phone_number", "string", "Phone number with country code.", choice(PHONES)),
            req("message", "string", "Text to send.", choice(MESSAGES)),
        ),
        (
            "Text {phone_number}: '{message}'.",
            "Send an SMS to {phone_number} saying '{message}'.",
            "Message {phone_number} with '{message}'.",
        ),
    ),
    Function(
        "post_to_channel",
        "messaging",
        "Post a message to a team chat channel.",
        (
            req("channel", "string", "Channel name.", choice(CHANNELS)),
            req("text", "string", "Message text.", choice(MESSAGES)),
            flag("pin", "Pin the message.", False, ["No need to pin it."], ["Pin it."]),
        ),
        ("Post '{text}' in {channel}.", "Tell {channel} '{text}'.", "Share '{text}' on the {channel} channel."),
    ),
    # ---- maps ----
    Function(
        "get_directions",
        "maps",
        "Route between two places.",
        (
            req("origin", "string", "Start place.", choice(PLACES)),
            req("destination", "string", "End place.", choice(PLACES)),
            enum_param(
                "mode",
                "Travel mode.",
                ["driving", "walking", "transit", "cycling"],
                optional=True,
                default="driving",
                clauses=["I'll be {v}.", "Route me by {v}."],
            ),
        ),
        (
            "How do I get from {origin} to {destination}?",
            "Give me directions from {origin} to {destination}.",
            "Route from {origin} to {destination}, please.",
        ),
    ),
    Function(
        "find_nearby_places",
        "maps",
        "Places of a kind near a location.",
        (
            req("location", "string", "Where to search around.", choice(PLACES)),
            enum_param("place_type", "Kind of place.", ["restaurant", "cafe", "pharmacy", "gas_station", "atm"]),
            opt(
                "radius_meters",
                "integer",
                "Search radius in metres.",
                integer(200, 5000),
                default=1000,
                clauses=["Within {v} meters.", "Search {v} meters around."],
            ),
        ),
        (
            "Find a {place_type} near {location}.",
            "Is there a {place_type} close to {location}?",
            "Show me {place_type} options around {location}.",
        ),
    ),
    Function(
        "get_distance",
        "maps",
        "Distance between two cities.",
        (
            req("origin", "string", "First city.", choice(CITIES)),
            req("destination", "string", "Second city.", choice(CITIES)),
            enum_param(
                "unit", "Distance unit.", ["km", "miles"], optional=True, default="km", clauses=["Answer in {v}."]
            ),
        ),
        (
            "How far is {origin} from {destination}?",
            "What's the distance between {origin} and {destination}?",
            "Tell me the distance from {origin} to {destination}.",
        ),
    ),
    # ---- food ----
    Function(
        "find_recipes",
        "food",
        "Recipes using given ingredients.",
        (
            req(
                "ingredients",
                "array",
                "Ingredients to use.",
                sample_list(INGREDIENTS, 1, 3, ordered=False),
                items={"type": "string"},
            ),
            enum_param(
                "diet",
                "Diet restriction.",
                ["none", "vegetarian", "vegan", "gluten_free"],
                optional=True,
                default="none",
                clauses=["It has to be {v}.", "Make it {v}."],
            ),
            opt(
                "max_minutes",
                "integer",
                "Longest cooking time.",
                integer(10, 90),
                clauses=["Ready in {v} minutes or less."],
            ),
        ),
        (
            "What can I cook with {ingredients}?",
            "Find recipes that use {ingredients}.",
            "Suggest a dish made from {ingredients}.",
        ),
    ),
    Function(
        "get_nutrition_info",
        "food",
        "Nutrition facts of a food portion.",
        (
            req("food", "string", "Food name.", choice(FOODS)),
            req("grams", "integer", "Portion in grams.", integer(30, 500)),
        ),
        (
            "How many calories are in {grams} g of {food}?",
            "Nutrition facts for {grams} grams of {food}, please.",
            "What nutrients does a {grams} g serving of {food} have?",
        ),
    ),
    # ---- movies ----
    Function(
        "find_showtimes",
        "movies",
        "Cinema showtimes of a movie.",
        (
            req("movie", "string", "Movie title.", choice(MOVIES)),
            req("city", "string", "City.", choice(CITIES)),
            req("date", "string", "Date, YYYY-MM-DD.", choice(DATES)),
        ),
        (
            "When is '{movie}' showing in {city} on {date}?",
            "Find showtimes for '{movie}' in {city} on {date}.",
            "I want to see '{movie}' in {city} on {date}. What times are there?",
        ),
    ),
    Function(
        "get_movie_details",
        "movies",
        "Plot, cast and rating of a movie.",
        (
            req("title", "string", "Movie title.", choice(MOVIES)),
            opt(
                "year",
                "integer",
                "Release year.",
                integer(1990, 2024),
                clauses=["The {v} release.", "It came out in {v}."],
            ),
        ),
        ("Tell me about the movie '{title}'.", "What is '{title}' about?", "Give me the details of '{title}'."),
    ),
    # ---- smart home ----
    Function(
        "set_thermostat",
        "smart_home",
        "Set a room's target temperature.",
        (
            req("room", "string", "Room name.", choice(ROOMS)),
            req("temperature", "float", "Target temperature in celsius.", number(16, 26, 1)),
            enum_param(
                "mode",
                "Heating mode.",
                ["heat", "cool", "auto"],
                optional=True,
                default="auto",
                clauses=["Use {v} mode.", "Set the mode to {v}."],
            ),
        ),
        (
            "Set the {room} to {temperature} degrees.",
            "Make the {room} {temperature} degrees celsius.",
            "Change the {room} thermostat to {temperature}.",
        ),
    ),
    Function(
        "control_lights",
        "smart_home",
        "Switch the lights of a room.",
        (
            req("room", "string", "Room name.", choice(ROOMS)),
            req("on", "boolean", "True to switch on, false to switch off.", boolean("on", "off")),
            opt(
                "brightness",
                "integer",
                "Brightness in percent.",
                integer(10, 100),
                clauses=["Brightness {v} percent.", "Set them to {v} percent."],
            ),
        ),
        (
            "Turn {on} the lights in the {room}.",
            "Switch the {room} lights {on}.",
            "Please turn the {room} lights {on}.",
        ),
    ),
    # ---- language ----
    Function(
        "translate_text",
        "language",
        "Translate text into another language.",
        (
            req("text", "string", "Text to translate.", choice(PHRASES)),
            enum_param(
                "target_language", "Language to translate into.", ["French", "Spanish", "German", "Italian", "Japanese"]
            ),
        ),
        (
            "Translate '{text}' into {target_language}.",
            "How do you say '{text}' in {target_language}?",
            "Put '{text}' into {target_language} for me.",
        ),
    ),
    Function(
        "define_word",
        "language",
        "Dictionary definition of a word.",
        (
            req("word", "string", "The word.", choice(WORDS)),
            flag(
                "include_examples",
                "Add example sentences.",
                False,
                ["Just the definition."],
                ["Include example sentences."],
            ),
        ),
        ("What does '{word}' mean?", "Define the word '{word}'.", "Look up '{word}' in the dictionary."),
    ),
)

DOMAINS: tuple[str, ...] = tuple(dict.fromkeys(f.domain for f in CATALOG))
